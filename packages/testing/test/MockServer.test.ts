import { spawn } from "node:child_process"
import * as Path from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"

import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"

import * as MockServer from "../src/MockServer.js"
import type * as MockStrava from "../src/MockStrava.js"
import * as Simulator from "../src/Simulator.js"

const app = Simulator.defaultApp
const bin = Path.join(Path.dirname(fileURLToPath(import.meta.url)), "../bin/strava-mock.js")

const withServer = <A, E>(
  f: (server: MockServer.MockServerShape, mock: MockStrava.MockStravaShape) => Effect.Effect<A, E>,
  options: MockServer.Options = {}
) => Effect.scoped(Effect.flatMap(MockServer.make(options), ({ mock, server }) => f(server, mock)))

const fetchText = (url: string, init: RequestInit = {}) =>
  Effect.promise(async () => {
    const response = await fetch(url, { redirect: "manual", ...init })
    return { status: response.status, headers: response.headers, text: await response.text() }
  })

const authorizeQuery = (extra: Record<string, string> = {}) =>
  new URLSearchParams({
    client_id: app.clientId,
    redirect_uri: "http://127.0.0.1:9/authorization",
    response_type: "code",
    scope: "read,activity:read",
    state: "s1",
    ...extra
  })

const form = (decision: string, grant: Array<string>) => {
  const body = new URLSearchParams(authorizeQuery())
  body.set("decision", decision)
  for (const g of grant) body.append("grant", g)
  return { method: "POST", body, headers: { "content-type": "application/x-www-form-urlencoded" } }
}

describe("MockServer over real HTTP on 127.0.0.1", () => {
  it.live("serves the authorize page with the app name, scope checkboxes, Authorize and Cancel", () =>
    withServer((server) =>
      Effect.gen(function*() {
        const page = yield* fetchText(`${server.url}/oauth/authorize?${authorizeQuery()}`)
        assert.strictEqual(page.status, 200)
        assert.include(page.headers.get("content-type"), "text/html")
        assert.include(page.text, app.name)
        assert.include(page.text, "value=\"activity:read\" checked")
        assert.include(page.text, "id=\"authorize\"")
        assert.include(page.text, "id=\"cancel\"")
        assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/)
      })
    ))

  it.live("Authorize redirects with code and granted scopes; the code exchanges over HTTP", () =>
    withServer((server) =>
      Effect.gen(function*() {
        const accepted = yield* fetchText(`${server.url}/oauth/accept`, form("authorize", ["activity:read"]))
        assert.strictEqual(accepted.status, 302)
        const location = new URL(accepted.headers.get("location")!)
        assert.strictEqual(location.origin + location.pathname, "http://127.0.0.1:9/authorization")
        assert.strictEqual(location.searchParams.get("state"), "s1")
        assert.strictEqual(location.searchParams.get("scope"), "read,activity:read")
        const exchanged = yield* fetchText(`${server.url}/oauth/token`, {
          method: "POST",
          body: new URLSearchParams({
            client_id: app.clientId,
            client_secret: app.clientSecret,
            code: location.searchParams.get("code")!,
            grant_type: "authorization_code"
          })
        })
        assert.strictEqual(exchanged.status, 200)
        const tokens = JSON.parse(exchanged.text)
        const athlete = yield* fetchText(`${server.apiUrl}/athlete`, {
          headers: { authorization: `Bearer ${tokens.access_token}` }
        })
        assert.strictEqual(JSON.parse(athlete.text).id, 1001)
      })
    ))

  it.live("Cancel redirects with error=access_denied; unticking a box drops the scope", () =>
    withServer((server) =>
      Effect.gen(function*() {
        const cancelled = yield* fetchText(`${server.url}/oauth/accept`, form("cancel", ["activity:read"]))
        assert.strictEqual(
          cancelled.headers.get("location"),
          "http://127.0.0.1:9/authorization?state=s1&error=access_denied"
        )
        const unticked = yield* fetchText(`${server.url}/oauth/accept`, form("authorize", []))
        assert.strictEqual(new URL(unticked.headers.get("location")!).searchParams.get("scope"), "read")
      })
    ))

  it.live("approval_prompt=auto skips the page for a grant that already covers the scopes; force shows it", () =>
    withServer((server) =>
      Effect.gen(function*() {
        const accepted = yield* fetchText(`${server.url}/oauth/accept`, form("authorize", ["activity:read"]))
        const code = new URL(accepted.headers.get("location")!).searchParams.get("code")!
        yield* fetchText(`${server.url}/oauth/token`, {
          method: "POST",
          body: new URLSearchParams({
            client_id: app.clientId,
            client_secret: app.clientSecret,
            code,
            grant_type: "authorization_code"
          })
        })
        const auto = yield* fetchText(`${server.url}/oauth/authorize?${authorizeQuery()}`)
        assert.strictEqual(auto.status, 302)
        const force = yield* fetchText(`${server.url}/oauth/authorize?${authorizeQuery({ approval_prompt: "force" })}`)
        assert.strictEqual(force.status, 200)
      })
    ))

  it.live("a bad authorize request shows Strava's envelope, not the page", () =>
    withServer((server) =>
      Effect.gen(function*() {
        const response = yield* fetchText(`${server.url}/oauth/authorize?${authorizeQuery({ client_id: "x" })}`)
        assert.strictEqual(response.status, 400)
        assert.deepStrictEqual(JSON.parse(response.text).errors, [
          { resource: "Application", field: "client_id", code: "invalid" }
        ])
      })
    ))

  it.live("a reset fault drops the connection; the control endpoints drive the simulator", () =>
    withServer((server, mock) =>
      Effect.gen(function*() {
        yield* fetchText(`${server.url}/_mock/faults`, {
          method: "POST",
          body: JSON.stringify({ endpoint: "token", fault: { _tag: "Reset" }, when: { times: 1 } })
        })
        const reset = yield* Effect.either(
          Effect.tryPromise(() => fetch(`${server.url}/oauth/token`, { method: "POST" }))
        )
        assert.strictEqual(reset._tag, "Left")
        const log = JSON.parse((yield* fetchText(`${server.url}/_mock/log`)).text)
        assert.strictEqual(log[0].status, "reset")
        assert.strictEqual((yield* mock.log).length, 1)
      })
    ))
})

describe("MockServer: many athletes and the athlete cap", () => {
  const exchangeCode = (server: MockServer.MockServerShape, location: string | null) =>
    Effect.gen(function*() {
      assert.isNotNull(location)
      const exchanged = yield* fetchText(`${server.url}/oauth/token`, {
        method: "POST",
        body: new URLSearchParams({
          client_id: app.clientId,
          client_secret: app.clientSecret,
          code: new URL(location!).searchParams.get("code")!,
          grant_type: "authorization_code"
        })
      })
      assert.strictEqual(exchanged.status, 200)
      return JSON.parse(exchanged.text) as { access_token: string; athlete: { id: number } }
    })

  /** The athlete chosen in the page's select presses Authorize. */
  const signIn = (server: MockServer.MockServerShape, athleteId: number, extra: Record<string, string> = {}) =>
    Effect.gen(function*() {
      const body = new URLSearchParams(authorizeQuery(extra))
      body.set("decision", "authorize")
      body.set("athlete_id", String(athleteId))
      body.append("grant", "activity:read")
      return yield* fetchText(`${server.url}/oauth/accept`, { method: "POST", body })
    })

  const selected = (page: string) => /<option value="(\d+)" selected>/.exec(page)?.[1]

  it.live("the page lists 1,000 athletes in a select, the first chosen; athlete_id preselects; Authorize signs in the chosen one", () =>
    withServer((server) =>
      Effect.gen(function*() {
        const page = yield* fetchText(`${server.url}/oauth/authorize?${authorizeQuery()}`)
        assert.strictEqual(page.status, 200)
        assert.include(page.text, "<select id=\"athlete-select\" name=\"athlete_id\">")
        assert.strictEqual(page.text.match(/<option value="\d+"/g)?.length, 1000)
        assert.strictEqual(selected(page.text), "1001")
        const preselected = yield* fetchText(`${server.url}/oauth/authorize?${authorizeQuery({ athlete_id: "1999" })}`)
        assert.strictEqual(selected(preselected.text), "1999")
        assert.include(preselected.text, "<strong id=\"athlete\">Athlete 1999</strong>")
        const accepted = yield* signIn(server, 1500)
        assert.strictEqual(accepted.status, 302)
        const tokens = yield* exchangeCode(server, accepted.headers.get("location"))
        assert.strictEqual(tokens.athlete.id, 1500)
        const athlete = yield* fetchText(`${server.apiUrl}/athlete`, {
          headers: { authorization: `Bearer ${tokens.access_token}` }
        })
        assert.strictEqual(JSON.parse(athlete.text).id, 1500)
        const unknown = yield* fetchText(`${server.url}/oauth/authorize?${authorizeQuery({ athlete_id: "7" })}`)
        assert.strictEqual(unknown.status, 400)
      }), { athletes: Simulator.makeAthletes(1000) }))

  it.live("approval_prompt=auto skips the page only for the chosen athlete's own grant", () =>
    withServer((server) =>
      Effect.gen(function*() {
        yield* exchangeCode(server, (yield* signIn(server, 1002)).headers.get("location"))
        const other = yield* fetchText(`${server.url}/oauth/authorize?${authorizeQuery({ athlete_id: "1001" })}`)
        assert.strictEqual(other.status, 200)
        const same = yield* fetchText(`${server.url}/oauth/authorize?${authorizeQuery({ athlete_id: "1002" })}`)
        assert.strictEqual(same.status, 302)
        const tokens = yield* exchangeCode(server, same.headers.get("location"))
        assert.strictEqual(tokens.athlete.id, 1002)
      }), { athletes: Simulator.makeAthletes(2) }))

  it.live("at the cap a new athlete gets the 403 page and no redirect; a connected athlete re-authorizes", () =>
    withServer((server, mock) =>
      Effect.gen(function*() {
        for (const id of [1001, 1002]) yield* exchangeCode(server, (yield* signIn(server, id)).headers.get("location"))
        assert.strictEqual(mock.simulator.connectedAthletes(), 2)
        const limit =
          "Error 403: Limit of connected athletes exceeded. This app has exceeded the limit of connected athletes"
        const page = yield* fetchText(`${server.url}/oauth/authorize?${authorizeQuery({ athlete_id: "1003" })}`)
        assert.strictEqual(page.status, 403)
        assert.include(page.text, limit)
        assert.isNull(page.headers.get("location"))
        // The select on an open page cannot get round it: the POST is refused the same way.
        const accepted = yield* signIn(server, 1003)
        assert.strictEqual(accepted.status, 403)
        assert.include(accepted.text, limit)
        assert.isNull(accepted.headers.get("location"))
        const again = yield* fetchText(
          `${server.url}/oauth/authorize?${authorizeQuery({ athlete_id: "1001", approval_prompt: "force" })}`
        )
        assert.strictEqual(again.status, 200)
        const reauthorized = yield* signIn(server, 1001, { approval_prompt: "force" })
        assert.strictEqual(reauthorized.status, 302)
        assert.strictEqual((yield* exchangeCode(server, reauthorized.headers.get("location"))).athlete.id, 1001)
        assert.strictEqual(mock.simulator.connectedAthletes(), 2)
        assert.deepStrictEqual(
          JSON.parse(
            (yield* fetchText(`${server.url}/_mock/revoke?athlete_id=1002`, {
              method: "POST"
            })).text
          ),
          { revoked: true }
        )
        assert.strictEqual(
          (yield* fetchText(`${server.url}/oauth/authorize?${authorizeQuery({ athlete_id: "1003" })}`)).status,
          200
        )
      }), { athletes: Simulator.makeAthletes(3), athleteCap: 2 }))
})

describe("strava-mock (the bin, in a separate process)", () => {
  it.live("prints its base URL, answers a bad code with 400 and Strava's envelope, serves the page, stops on SIGTERM", () =>
    Effect.gen(function*() {
      const child = spawn(process.execPath, [bin, "--port", "0", "--client-id", "777", "--client-secret", "s3"], {
        stdio: ["ignore", "pipe", "pipe"]
      })
      const url = yield* Effect.promise(() =>
        new Promise<string>((resolve, reject) => {
          createInterface({ input: child.stdout! }).once("line", resolve)
          child.once("exit", (code) => reject(new Error(`strava-mock exited with ${code}`)))
        })
      )
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/)
      const bad = yield* fetchText(`${url}/oauth/token`, {
        method: "POST",
        body: new URLSearchParams({
          client_id: "777",
          client_secret: "s3",
          code: "nope",
          grant_type: "authorization_code"
        })
      })
      assert.strictEqual(bad.status, 400)
      assert.deepStrictEqual(JSON.parse(bad.text), {
        message: "Bad Request",
        errors: [{ resource: "RequestToken", field: "code", code: "invalid" }]
      })
      const page = yield* fetchText(
        `${url}/oauth/authorize?${authorizeQuery({ client_id: "777" })}`
      )
      assert.strictEqual(page.status, 200)
      assert.include(page.text, "Authorize")
      const code = yield* Effect.promise(() =>
        new Promise<number | null>((resolve) => {
          child.once("exit", (c) => resolve(c))
          child.kill("SIGTERM")
        })
      )
      assert.strictEqual(code, 0)
    }))

  it.live("refuses a bad flag with exit 64 and says what to do", () =>
    Effect.gen(function*() {
      const result = yield* Effect.promise(() =>
        new Promise<{ code: number | null; stderr: string }>((resolve) => {
          const child = spawn(process.execPath, [bin, "--access-token-lifetime", "soon"], {
            stdio: ["ignore", "pipe", "pipe"]
          })
          let stderr = ""
          child.stderr!.on("data", (d) => (stderr += d))
          child.once("exit", (code) => resolve({ code, stderr }))
        })
      )
      assert.strictEqual(result.code, 64)
      assert.include(result.stderr, "--access-token-lifetime takes a duration")
      assert.include(result.stderr, "--help")
    }))
})
