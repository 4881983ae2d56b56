// Spans over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set: a receiver on 127.0.0.1 gets the refresh, the
// OAuth step and the token file's operations as spans, with the grant's key, and never a token or a secret.
import * as Fs from "node:fs"
import * as Http from "node:http"
import type * as Net from "node:net"

import { assert, describe, it } from "@effect/vitest"
import { MockServer, Simulator } from "@strava-auth/testing"
import * as Effect from "effect/Effect"

import { daemon, eventually, login, run, sandbox } from "./harness.js"

interface Span {
  readonly name: string
  readonly attributes: ReadonlyArray<{ readonly key: string; readonly value: Record<string, unknown> }>
}

/** An OTLP/HTTP JSON receiver: every body it got (raw), and the spans in them. */
const receiver = Effect.acquireRelease(
  Effect.async<
    { readonly url: string; readonly bodies: Array<string>; readonly spans: Array<Span>; readonly server: Http.Server }
  >(
    (resume) => {
      const bodies: Array<string> = []
      const spans: Array<Span> = []
      const server = Http.createServer((req, res) => {
        let body = ""
        req.setEncoding("utf8")
        req.on("data", (chunk: string) => (body += chunk))
        req.on("end", () => {
          bodies.push(body)
          if (req.url === "/v1/traces") {
            const parsed = JSON.parse(body) as {
              resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<Span> }> }>
            }
            for (const r of parsed.resourceSpans) for (const s of r.scopeSpans) spans.push(...s.spans)
          }
          res.writeHead(200, { "content-type": "application/json" }).end("{}")
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as Net.AddressInfo
        resume(Effect.succeed({ url: `http://127.0.0.1:${port}`, bodies, spans, server }))
      })
    }
  ),
  ({ server }) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
)

const attribute = (span: Span, key: string) => {
  const found = span.attributes.find((a) => a.key === key)?.value
  return found === undefined ? undefined : Object.values(found)[0]
}

describe("tracing over OTLP", () => {
  it.scopedLive(
    "refresh --local sends its spans (the refresh, Strava's token call, the token file's lock and read) and no secret",
    () =>
      Effect.gen(function*() {
        const { server } = yield* MockServer.make()
        const otlp = yield* receiver
        const box = sandbox(server)
        yield* login(box, server)
        const before = JSON.parse(Fs.readFileSync(box.tokenFile, "utf8"))
        const result = yield* run(["refresh", "--local"], { ...box.env, OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url })
        assert.strictEqual(result.code, 0, result.stderr)
        const names = otlp.spans.map((s) => s.name)
        for (
          const name of ["RefreshEngine.refreshOnce", "StravaOAuth.refresh", "TokenFile.withLock", "TokenFile.get"]
        ) {
          assert.include(names, name)
        }
        const refresh = otlp.spans.find((s) => s.name === "RefreshEngine.refreshOnce")!
        assert.strictEqual(attribute(refresh, "grant"), "default")
        const after = JSON.parse(Fs.readFileSync(box.tokenFile, "utf8"))
        const everything = otlp.bodies.join("\n")
        for (const secret of [before.access_token, before.refresh_token, after.access_token, after.refresh_token]) {
          assert.notInclude(everything, secret)
        }
        assert.notInclude(everything, Simulator.defaultApp.clientSecret)
      }),
    30_000
  )

  it.scopedLive(
    "the daemon's own refreshes are spans too; without the variable nothing is sent",
    () =>
      Effect.gen(function*() {
        const { server } = yield* MockServer.make()
        const otlp = yield* receiver
        const box = sandbox(server)
        yield* login(box, server)
        yield* Effect.scoped(
          daemon({
            ...box,
            env: { ...box.env, OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, STRAVA_AUTH_REFRESH_MARGIN: "6h" }
          }).pipe(Effect.zipRight(eventually(
            async () => otlp.spans.some((s) => s.name === "RefreshEngine.refresh") || undefined,
            15_000,
            "the daemon's refresh span"
          )))
        )
        const sent = otlp.bodies.length
        const quiet = yield* run(["refresh", "--local"], box.env)
        assert.strictEqual(quiet.code, 0, quiet.stderr)
        yield* Effect.sleep("1500 millis")
        assert.strictEqual(otlp.bodies.length, sent)
      }),
    40_000
  )
})
