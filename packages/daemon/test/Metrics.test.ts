// GET /metrics on the daemon's socket and, with --metrics-listen, alone over TCP: Prometheus' text format,
// read back with a real parser of that format; counts that follow what the refreshes came to; never a token.
import * as Fs from "node:fs"

import { assert, describe, it } from "@effect/vitest"
import { MockServer } from "@strava-auth/testing"
import * as Effect from "effect/Effect"
// @ts-expect-error: the parser ships no types
import parsePrometheusTextFormat from "parse-prometheus-text-format"

import * as Metrics from "../src/Metrics.js"
import { daemon, eventually, freePort, login, run, sandbox, socketGet } from "./harness.js"

interface Family {
  readonly name: string
  readonly type: string
  readonly metrics: ReadonlyArray<{ readonly value: string; readonly labels?: Record<string, string> }>
}

const parse = (text: string): Map<string, Family> =>
  new Map((parsePrometheusTextFormat(text) as Array<Family>).map((family) => [family.name, family]))

const value = (families: Map<string, Family>, name: string, labels: Record<string, string> = {}) => {
  const family = families.get(name)
  const sample = family?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
  return sample === undefined ? undefined : Number(sample.value)
}

describe("metrics", () => {
  it.scopedLive(
    "GET /metrics: the token's seconds left, refreshes by outcome, failures by kind, the rate limit; over TCP alone",
    () =>
      Effect.gen(function*() {
        const { mock, server } = yield* MockServer.make()
        const box = sandbox(server)
        yield* login(box, server)
        const token = JSON.parse(Fs.readFileSync(box.tokenFile, "utf8"))
        const scrape = () =>
          Effect.promise(async () => {
            const reply = await socketGet(box.socket, "/metrics")
            assert.strictEqual(reply._tag, "Reply")
            const body = reply._tag === "Reply" ? reply.body : ""
            assert.notInclude(body, token.access_token)
            assert.notInclude(body, token.refresh_token)
            return parse(body)
          })
        const scrapeUntil = (check: (families: Map<string, Family>) => boolean, what: string) =>
          eventually(
            async () => {
              const families = await Effect.runPromise(scrape())
              return check(families) ? families : undefined
            },
            15_000,
            what
          )

        yield* Effect.scoped(Effect.gen(function*() {
          yield* daemon(box)
          const first = yield* scrape()
          const left = value(first, "strava_auth_token_expires_in_seconds", { account: "default" })!
          const expected = token.expires_at - Math.floor(Date.now() / 1000)
          assert.isAtMost(Math.abs(left - expected), 5)
          assert.strictEqual(first.get("strava_auth_token_expires_in_seconds")?.type, "GAUGE")
          assert.strictEqual(value(first, "strava_auth_login_needed", { account: "default" }), 0)
          assert.strictEqual(value(first, "strava_auth_refreshes_total", { outcome: "same" }), 0)
          assert.strictEqual(first.get("strava_auth_refreshes_total")?.type, "COUNTER")
          assert.isAbove(value(first, "process_resident_memory_bytes")!, 1_000_000)
          // A refresh with hours left: Strava returns the same token.
          assert.strictEqual((yield* run(["refresh"], box.env)).code, 0)
          assert.strictEqual(value(yield* scrape(), "strava_auth_refreshes_total", { outcome: "same" }), 1)
        }))

        // Due at once, and Strava answers 503: a failure of that kind (each daemon's first refresh is its own).
        const due = { ...box, env: { ...box.env, STRAVA_AUTH_REFRESH_MARGIN: "6h" } }
        yield* mock.inject({ endpoint: "token", fault: { _tag: "ServerError", status: 503 }, when: { times: 1 } })
        yield* Effect.scoped(Effect.gen(function*() {
          yield* daemon(due)
          const failed = yield* scrapeUntil(
            (f) => value(f, "strava_auth_refresh_failures_total", { kind: "ServerError" }) === 1,
            "a ServerError counted"
          )
          assert.isAbove(value(failed, "strava_auth_consecutive_failures")!, 0)
        }))

        // A 429 with Strava's rate-limit headers: counted, and the usage and limit it reported; over TCP alone.
        // Two API calls first, so the app's usage is not zero.
        for (let i = 0; i < 2; i++) {
          yield* Effect.promise(() =>
            fetch(`${server.apiUrl}/athlete`, { headers: { authorization: `Bearer ${token.access_token}` } })
              .then((r) => r.text())
          )
        }
        yield* mock.inject({ endpoint: "token", fault: { _tag: "RateLimited" }, when: { times: 1 } })
        const port = yield* Effect.promise(freePort)
        yield* daemon(due, ["--metrics-listen", `127.0.0.1:${port}`])
        const limited = yield* scrapeUntil(
          (f) => value(f, "strava_auth_refresh_failures_total", { kind: "RateLimited" }) === 1,
          "a RateLimited counted"
        )
        assert.isAtLeast(value(limited, "strava_auth_rate_limit_usage", { window: "15m" })!, 2)
        assert.isAbove(value(limited, "strava_auth_rate_limit_limit", { window: "day" })!, 0)

        const tcp = yield* Effect.promise(() => fetch(`http://127.0.0.1:${port}/metrics`))
        assert.strictEqual(tcp.status, 200)
        assert.include(tcp.headers.get("content-type")!, "version=0.0.4")
        const text = yield* Effect.promise(() => tcp.text())
        assert.notInclude(text, token.access_token)
        assert.strictEqual(value(parse(text), "strava_auth_refresh_failures_total", { kind: "RateLimited" }), 1)
        for (const path of ["/token", "/token.json", "/health"]) {
          const other = yield* Effect.promise(() => fetch(`http://127.0.0.1:${port}${path}`))
          assert.strictEqual(other.status, 404, path)
          assert.notInclude(yield* Effect.promise(() => other.text()), token.access_token)
        }
      }),
    60_000
  )

  it.scopedLive(
    "no token file: login needed is 1 and there is no expiry; a bad --metrics-listen is a usage error",
    () =>
      Effect.gen(function*() {
        const { server } = yield* MockServer.make()
        const box = sandbox(server)
        yield* daemon(box)
        const reply = yield* Effect.promise(() => socketGet(box.socket, "/metrics"))
        const families = parse(reply._tag === "Reply" ? reply.body : "")
        assert.strictEqual(value(families, "strava_auth_login_needed", { account: "default" }), 1)
        assert.isUndefined(value(families, "strava_auth_token_expires_in_seconds"))
        for (const bad of ["9464", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "localhost:port"]) {
          const result = yield* run(["daemon", "--metrics-listen", bad], box.env)
          assert.strictEqual(result.code, 64, bad)
          assert.include(result.stderr, "--metrics-listen")
        }
      }),
    30_000
  )

  it("label values are escaped as the format asks, and read back whole by the parser", () => {
    const name = "a \"quoted\" \\ name\nwith a newline"
    const text = Metrics.render([{
      name,
      snapshot: {
        status: "ok",
        tokens: undefined,
        nextRefreshAt: undefined,
        lastRefreshAt: undefined,
        consecutiveFailures: 2,
        lastError: undefined
      },
      counters: Metrics.counters()
    }], Date.now())
    assert.strictEqual(value(parse(text), "strava_auth_consecutive_failures", { account: name }), 2)
    assert.deepStrictEqual(Metrics.parseListen("[::1]:9464"), { host: "::1", port: 9464 })
    assert.deepStrictEqual(Metrics.parseListen("0.0.0.0:80"), { host: "0.0.0.0", port: 80 })
    assert.isUndefined(Metrics.parseListen("127.0.0.1:0"))
  })
})
