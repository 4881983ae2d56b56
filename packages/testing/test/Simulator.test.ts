import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"

import * as MockStrava from "../src/MockStrava.js"
import * as Simulator from "../src/Simulator.js"

// The simulator's conformance suite: each rule of docs/STRAVA.md, over the in-process HttpClient, with raw
// requests (this package never imports @strava-auth/core).

const app = Simulator.defaultApp
const web = "https://www.strava.com"
const api = "https://www.strava.com/api/v3"
const hours = (n: number) => n * 3_600_000

const send = (request: HttpClientRequest.HttpClientRequest) =>
  Effect.gen(function*() {
    const response = yield* (yield* HttpClient.HttpClient).execute(request)
    const text = yield* response.text
    const isJson = (response.headers["content-type"] ?? "").startsWith("application/json")
    const json = isJson ? yield* Effect.try(() => JSON.parse(text)) : undefined
    return { status: response.status, headers: response.headers, text, json }
  })

const token = (params: Record<string, string>) =>
  send(
    HttpClientRequest.post(`${web}/oauth/token`).pipe(
      HttpClientRequest.bodyUrlParams({ client_id: app.clientId, client_secret: app.clientSecret, ...params })
    )
  )

const apiGet = (path: string, accessToken: string) =>
  send(HttpClientRequest.get(`${api}${path}`).pipe(HttpClientRequest.bearerToken(accessToken)))

const authorizeUrl = (params: Record<string, string> = {}) =>
  `${web}/oauth/authorize?${new URLSearchParams({
    client_id: app.clientId,
    redirect_uri: "http://localhost:8123/authorization",
    response_type: "code",
    scope: "read,activity:read",
    state: "st",
    ...params
  })}`

const code = (decision: MockStrava.Decision = {}, params: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const mock = yield* MockStrava.MockStrava
    return new URL(yield* mock.approve(authorizeUrl(params), decision)).searchParams.get("code")!
  })

const exchange = Effect.gen(function*() {
  const response = yield* token({ code: yield* code(), grant_type: "authorization_code" })
  return response.json as { access_token: string; refresh_token: string; expires_at: number }
})

const errorOf = (response: { json: unknown }) =>
  (response.json as { errors: Array<{ resource: string; field: string; code: string }> }).errors[0]

const Live = MockStrava.layerClient()

describe("authorize", () => {
  it.effect("redirects with state, code and the granted scopes with raw commas, read always added", () =>
    Effect.gen(function*() {
      const mock = yield* MockStrava.MockStrava
      const redirect = yield* mock.approve(authorizeUrl({ scope: "activity:read_all" }))
      assert.match(
        redirect,
        /^http:\/\/localhost:8123\/authorization\?state=st&code=[0-9a-f]{40}&scope=read,activity:read_all$/
      )
    }).pipe(Effect.provide(Live)))

  it.effect("sends state= (empty) even when none was asked, and drops unticked scopes", () =>
    Effect.gen(function*() {
      const mock = yield* MockStrava.MockStrava
      const url = authorizeUrl({ scope: "activity:read,profile:read_all" }).replace("&state=st", "")
      const redirect = yield* mock.approve(url, { scopes: ["profile:read_all"] })
      assert.match(redirect, /\?state=&code=[0-9a-f]+&scope=read,profile:read_all$/)
    }).pipe(Effect.provide(Live)))

  it.effect("Cancel redirects with error=access_denied and the state", () =>
    Effect.gen(function*() {
      const mock = yield* MockStrava.MockStrava
      assert.strictEqual(
        yield* mock.approve(authorizeUrl(), { deny: true }),
        "http://localhost:8123/authorization?state=st&error=access_denied"
      )
    }).pipe(Effect.provide(Live)))

  it.effect("refuses a redirect URI outside the callback domain, an unknown client and an unknown scope", () =>
    Effect.gen(function*() {
      const mock = yield* MockStrava.MockStrava
      const domain = yield* Effect.flip(mock.approve(authorizeUrl({ redirect_uri: "https://evil.example/cb" })))
      assert.strictEqual(domain.status, 400)
      assert.include(domain.body, "redirect_uri")
      const client = yield* Effect.flip(mock.approve(authorizeUrl({ client_id: "abc" })))
      assert.include(client.body, "\"field\":\"client_id\"")
      const scope = yield* Effect.flip(mock.approve(authorizeUrl({ scope: "read activity:read" })))
      assert.include(scope.body, "\"field\":\"scope\"")
      // 127.0.0.1 on any port is always allowed
      yield* mock.approve(authorizeUrl({ redirect_uri: "http://127.0.0.1:59999/x" }))
    }).pipe(Effect.provide(Live)))
})

describe("token exchange", () => {
  it.effect("answers Strava's exchange shape with a summary athlete and no rate-limit headers", () =>
    Effect.gen(function*() {
      const response = yield* token({ code: yield* code(), grant_type: "authorization_code" })
      assert.strictEqual(response.status, 200)
      assert.strictEqual(response.json.token_type, "Bearer")
      assert.strictEqual(response.json.expires_at, 21600)
      assert.strictEqual(response.json.expires_in, 21600)
      assert.match(response.json.access_token, /^[0-9a-f]{40}$/)
      assert.match(response.json.refresh_token, /^[0-9a-f]{40}$/)
      assert.strictEqual(response.json.athlete.id, 1001)
      assert.strictEqual(response.json.athlete.resource_state, 2)
      assert.notProperty(response.headers, "x-ratelimit-usage")
    }).pipe(Effect.provide(Live)))

  it.effect("a code is single-use: the second exchange is 400 RequestToken/code/invalid", () =>
    Effect.gen(function*() {
      const c = yield* code()
      yield* token({ code: c, grant_type: "authorization_code" })
      const again = yield* token({ code: c, grant_type: "authorization_code" })
      assert.strictEqual(again.status, 400)
      assert.deepStrictEqual(again.json, {
        message: "Bad Request",
        errors: [{ resource: "RequestToken", field: "code", code: "invalid" }]
      })
    }).pipe(Effect.provide(Live)))

  it.effect("an expired code is 400 AuthorizationCode//expired (lifetime from Clock)", () =>
    Effect.gen(function*() {
      const c = yield* code()
      yield* TestClock.adjust("11 minutes")
      const response = yield* token({ code: c, grant_type: "authorization_code" })
      assert.deepStrictEqual(errorOf(response), { resource: "AuthorizationCode", field: "", code: "expired" })
    }).pipe(Effect.provide(Live)))

  it.effect("a bad client id is 400 Application/client_id/invalid; a wrong secret 401 Application//invalid", () =>
    Effect.gen(function*() {
      const badId = yield* token({ client_id: "abc", code: "x", grant_type: "authorization_code" })
      assert.strictEqual(badId.status, 400)
      assert.deepStrictEqual(errorOf(badId), { resource: "Application", field: "client_id", code: "invalid" })
      const badSecret = yield* token({ client_secret: "nope", code: yield* code(), grant_type: "authorization_code" })
      assert.strictEqual(badSecret.status, 401)
      assert.strictEqual(badSecret.json.message, "Authorization Error")
      assert.deepStrictEqual(errorOf(badSecret), { resource: "Application", field: "", code: "invalid" })
    }).pipe(Effect.provide(Live)))

  it.effect("also answers at /api/v3/oauth/token and with parameters in the query string", () =>
    Effect.gen(function*() {
      const c = yield* code()
      const query = new URLSearchParams({
        client_id: app.clientId,
        client_secret: app.clientSecret,
        code: c,
        grant_type: "authorization_code"
      })
      const response = yield* send(HttpClientRequest.post(`${api}/oauth/token?${query}`))
      assert.strictEqual(response.status, 200)
    }).pipe(Effect.provide(Live)))
})

describe("refresh", () => {
  it.effect("the one-hour rule: more than an hour left returns the same tokens with a smaller expires_in", () =>
    Effect.gen(function*() {
      const first = yield* exchange
      yield* TestClock.adjust(hours(4))
      const response = yield* token({ refresh_token: first.refresh_token, grant_type: "refresh_token" })
      assert.strictEqual(response.json.access_token, first.access_token)
      assert.strictEqual(response.json.refresh_token, first.refresh_token)
      assert.strictEqual(response.json.expires_at, first.expires_at)
      assert.strictEqual(response.json.expires_in, 7200)
    }).pipe(Effect.provide(Live)))

  it.effect("at an hour or less a new pair is minted, the old refresh token dies, the old access token lives on", () =>
    Effect.gen(function*() {
      const first = yield* exchange
      yield* TestClock.adjust(hours(5))
      const response = yield* token({ refresh_token: first.refresh_token, grant_type: "refresh_token" })
      assert.notStrictEqual(response.json.access_token, first.access_token)
      assert.notStrictEqual(response.json.refresh_token, first.refresh_token)
      assert.strictEqual(response.json.expires_at, 11 * 3600)
      const stale = yield* token({ refresh_token: first.refresh_token, grant_type: "refresh_token" })
      assert.strictEqual(stale.status, 400)
      assert.deepStrictEqual(errorOf(stale), { resource: "RefreshToken", field: "refresh_token", code: "invalid" })
      assert.strictEqual((yield* apiGet("/athlete", first.access_token)).status, 200)
      yield* TestClock.adjust(hours(1))
      assert.strictEqual((yield* apiGet("/athlete", first.access_token)).status, 401)
      assert.strictEqual((yield* apiGet("/athlete", response.json.access_token)).status, 200)
    }).pipe(Effect.provide(Live)))

  it.effect("lifetimes and the threshold are configurable", () =>
    Effect.gen(function*() {
      const first = yield* exchange
      assert.strictEqual(first.expires_at, 60)
      yield* TestClock.adjust("31 seconds")
      const response = yield* token({ refresh_token: first.refresh_token, grant_type: "refresh_token" })
      assert.notStrictEqual(response.json.access_token, first.access_token)
    }).pipe(
      Effect.provide(MockStrava.layerClient({ accessTokenLifetimeMillis: 60_000, refreshThresholdMillis: 30_000 }))
    ))
})

describe("API, deauthorize and revoke", () => {
  it.effect("GET /athlete: expired → Athlete/access_token/invalid; garbage → Application//invalid", () =>
    Effect.gen(function*() {
      const { access_token } = yield* exchange
      const garbage = yield* apiGet("/athlete", "garbage")
      assert.strictEqual(garbage.status, 401)
      assert.deepStrictEqual(errorOf(garbage), { resource: "Application", field: "", code: "invalid" })
      yield* TestClock.adjust(hours(6))
      const expired = yield* apiGet("/athlete", access_token)
      assert.strictEqual(expired.json.message, "Authorization Error")
      assert.deepStrictEqual(errorOf(expired), { resource: "Athlete", field: "access_token", code: "invalid" })
    }).pipe(Effect.provide(Live)))

  it.effect("a missing scope is 401 AccessToken/<scope>_permission/missing", () =>
    Effect.gen(function*() {
      const c = yield* code({}, { scope: "read" })
      const { access_token } = (yield* token({ code: c, grant_type: "authorization_code" })).json
      const response = yield* apiGet("/athlete/activities", access_token)
      assert.strictEqual(response.status, 401)
      assert.deepStrictEqual(errorOf(response), {
        resource: "AccessToken",
        field: "activity:read_permission",
        code: "missing"
      })
    }).pipe(Effect.provide(Live)))

  it.effect("an inactive app gets 403 Application/Status/Inactive on token and API calls", () =>
    Effect.gen(function*() {
      const mock = yield* MockStrava.MockStrava
      const first = yield* exchange
      yield* mock.setActive(false)
      const refresh = yield* token({ refresh_token: first.refresh_token, grant_type: "refresh_token" })
      assert.strictEqual(refresh.status, 403)
      assert.deepStrictEqual(refresh.json, {
        message: "Forbidden",
        errors: [{ resource: "Application", field: "Status", code: "Inactive" }]
      })
      assert.strictEqual((yield* apiGet("/athlete", first.access_token)).status, 403)
    }).pipe(Effect.provide(Live)))

  it.effect("deauthorize answers the submitted token and kills the whole grant", () =>
    Effect.gen(function*() {
      const first = yield* exchange
      const response = yield* send(
        HttpClientRequest.post(`${web}/oauth/deauthorize`).pipe(HttpClientRequest.bearerToken(first.access_token))
      )
      assert.deepStrictEqual(response.json, { access_token: first.access_token })
      assert.property(response.headers, "x-ratelimit-usage")
      assert.strictEqual((yield* apiGet("/athlete", first.access_token)).status, 401)
      const refresh = yield* token({ refresh_token: first.refresh_token, grant_type: "refresh_token" })
      assert.strictEqual(refresh.status, 400)
    }).pipe(Effect.provide(Live)))

  it.effect("revoke takes HTTP Basic and either token; bad credentials are 401", () =>
    Effect.gen(function*() {
      const first = yield* exchange
      const revoke = (user: string, pass: string) =>
        send(
          HttpClientRequest.post(`${web}/oauth/revoke`).pipe(
            HttpClientRequest.basicAuth(user, pass),
            HttpClientRequest.bodyUrlParams({ token: first.refresh_token, token_type_hint: "refresh_token" })
          )
        )
      assert.strictEqual((yield* revoke(app.clientId, "wrong")).status, 401)
      assert.strictEqual((yield* apiGet("/athlete", first.access_token)).status, 200)
      assert.strictEqual((yield* revoke(app.clientId, app.clientSecret)).status, 200)
      assert.strictEqual((yield* apiGet("/athlete", first.access_token)).status, 401)
    }).pipe(Effect.provide(Live)))

  it.effect("the athlete revoking the app kills its tokens", () =>
    Effect.gen(function*() {
      const mock = yield* MockStrava.MockStrava
      const first = yield* exchange
      assert.isTrue(yield* mock.revokeAthlete())
      assert.strictEqual((yield* apiGet("/athlete", first.access_token)).status, 401)
      assert.isUndefined(yield* mock.liveRefreshToken())
    }).pipe(Effect.provide(Live)))
})

describe("rate limits", () => {
  const Limited = MockStrava.layerClient({
    rateLimits: { overall: { fifteenMinutes: 3, daily: 5 }, read: { fifteenMinutes: 2, daily: 4 } }
  })

  it.effect("counts API calls on wall-clock windows, reports X-Ratelimit-* and answers 429 past the limit", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.UTC(2026, 10, 24, 10, 14))
      const { access_token } = yield* exchange
      const one = yield* apiGet("/athlete", access_token)
      assert.strictEqual(one.headers["x-ratelimit-limit"], "3,5")
      assert.strictEqual(one.headers["x-ratelimit-usage"], "1,1")
      assert.strictEqual(one.headers["x-readratelimit-usage"], "1,1")
      yield* apiGet("/athlete", access_token)
      const limited = yield* apiGet("/athlete", access_token)
      assert.strictEqual(limited.status, 429)
      assert.deepStrictEqual(limited.json, {
        message: "Rate Limit Exceeded",
        errors: [{ resource: "Application", field: "rate limit", code: "exceeded" }]
      })
      // the 15-minute window resets at :15, the daily one does not
      yield* TestClock.adjust("1 minute")
      const next = yield* apiGet("/athlete", access_token)
      assert.strictEqual(next.status, 200)
      assert.strictEqual(next.headers["x-ratelimit-usage"], "1,4")
    }).pipe(Effect.provide(Limited)))
})

describe("faults", () => {
  it.effect("each fault kind: 5xx HTML, 429, reset, malformed JSON, and the next N calls only", () =>
    Effect.gen(function*() {
      const mock = yield* MockStrava.MockStrava
      const { access_token } = yield* exchange
      yield* mock.inject({ endpoint: "athlete", fault: { _tag: "ServerError", status: 502 }, when: { times: 1 } })
      yield* mock.inject({ endpoint: "athlete", fault: { _tag: "RateLimited" }, when: { times: 1 } })
      yield* mock.inject({ endpoint: "athlete", fault: { _tag: "MalformedJson" }, when: { times: 1 } })
      yield* mock.inject({ endpoint: "athlete", fault: { _tag: "Reset" }, when: { times: 1 } })
      const html = yield* apiGet("/athlete", access_token)
      assert.strictEqual(html.status, 502)
      assert.include(html.headers["content-type"], "text/html")
      assert.strictEqual((yield* apiGet("/athlete", access_token)).status, 429)
      const malformed = yield* Effect.either(apiGet("/athlete", access_token))
      assert.strictEqual(malformed._tag, "Left") // JSON.parse of a truncated body
      const reset = yield* Effect.flip(apiGet("/athlete", access_token))
      assert.strictEqual(reset._tag, "RequestError")
      assert.strictEqual((yield* apiGet("/athlete", access_token)).status, 200)
      const log = yield* mock.log
      assert.deepStrictEqual(
        log.filter((e) => e.endpoint === "athlete").map((e) => e.fault ?? "none"),
        ["502", "429", "malformed json", "reset", "none"]
      )
    }).pipe(Effect.provide(Live)))

  it.effect("a hang never answers; a slow answer arrives after its delay (both on Clock)", () =>
    Effect.gen(function*() {
      const mock = yield* MockStrava.MockStrava
      const { access_token } = yield* exchange
      yield* mock.inject({ endpoint: "athlete", fault: { _tag: "Hang" }, when: { times: 1 } })
      yield* mock.inject({ endpoint: "athlete", fault: { _tag: "Slow", millis: 5000 }, when: { times: 1 } })
      const hung = yield* Effect.fork(apiGet("/athlete", access_token))
      yield* TestClock.adjust("1 hour")
      assert.isTrue(Option.isNone(yield* Fiber.poll(hung)))
      yield* Fiber.interrupt(hung)
      const slow = yield* Effect.fork(apiGet("/athlete", access_token))
      yield* TestClock.adjust("4 seconds")
      assert.isTrue(Option.isNone(yield* Fiber.poll(slow)))
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* Fiber.join(slow)).status, 200)
    }).pipe(Effect.provide(Live)))

  it.effect("processed: true applies the request (rotating the refresh token) and then loses the answer", () =>
    Effect.gen(function*() {
      const mock = yield* MockStrava.MockStrava
      const first = yield* exchange
      yield* TestClock.adjust(hours(5.5))
      yield* mock.inject({ endpoint: "token", fault: { _tag: "Reset", processed: true }, when: { times: 1 } })
      yield* Effect.flip(token({ refresh_token: first.refresh_token, grant_type: "refresh_token" }))
      assert.notStrictEqual(yield* mock.liveRefreshToken(), first.refresh_token)
      const entry = (yield* mock.log).at(-1)!
      assert.strictEqual(entry.outcome, "refreshed, then fault reset")
      assert.strictEqual(entry.refreshToken, first.refresh_token)
    }).pipe(Effect.provide(Live)))

  it.effect("a probability plan with a seed fires the same calls every run", () =>
    Effect.gen(function*() {
      const pattern = () =>
        Effect.gen(function*() {
          const mock = yield* MockStrava.MockStrava
          const { access_token } = yield* exchange
          yield* mock.inject({
            endpoint: "athlete",
            fault: { _tag: "ServerError", status: 500 },
            when: { probability: 0.3, seed: 42 }
          })
          const statuses: Array<number> = []
          for (let i = 0; i < 40; i++) statuses.push((yield* apiGet("/athlete", access_token)).status)
          return statuses
        }).pipe(Effect.provide(MockStrava.layerClient()))
      const a = yield* pattern()
      const b = yield* pattern()
      assert.deepStrictEqual(a, b)
      const failures = a.filter((s) => s === 500).length
      assert.isTrue(failures > 4 && failures < 24, `${failures} of 40 failed`)
    }))

  it.effect("never reaches a URL outside the mock", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(send(HttpClientRequest.get("https://example.com/")))
      assert.strictEqual(error._tag, "RequestError")
    }).pipe(Effect.provide(Live)))
})

describe("request log", () => {
  it.effect("records endpoint, grant type, the refresh token presented and the outcome", () =>
    Effect.gen(function*() {
      const mock = yield* MockStrava.MockStrava
      const first = yield* exchange
      yield* TestClock.adjust(hours(5.5))
      yield* token({ refresh_token: first.refresh_token, grant_type: "refresh_token" })
      yield* token({ refresh_token: first.refresh_token, grant_type: "refresh_token" })
      const refreshes = (yield* mock.log).filter((e) => e.grantType === "refresh_token")
      assert.deepStrictEqual(refreshes.map((e) => [e.refreshToken, e.status, e.outcome]), [
        [first.refresh_token, 200, "refreshed"],
        [first.refresh_token, 400, "invalid refresh token"]
      ])
      assert.strictEqual(refreshes[0]!.at, hours(5.5))
    }).pipe(Effect.provide(Live)))
})

describe("many athletes and the athlete cap (2026 program)", () => {
  const Capped = MockStrava.layerClient({ athletes: Simulator.makeAthletes(3), athleteCap: 2 })

  const exchangeAs = (athleteId: number, params: Record<string, string> = {}) =>
    Effect.gen(function*() {
      const response = yield* token({ code: yield* code({ athleteId }, params), grant_type: "authorization_code" })
      assert.strictEqual(response.status, 200)
      return response.json as { access_token: string; athlete: { id: number } }
    })

  it("makeAthletes gives consecutive ids from the first, each with its own username", () => {
    const athletes = Simulator.makeAthletes(1000, 5001)
    assert.strictEqual(athletes.length, 1000)
    assert.deepStrictEqual([athletes[0]!.id, athletes[999]!.id], [5001, 6000])
    assert.strictEqual(new Set(athletes.map((a) => a.username)).size, 1000)
    assert.strictEqual(Simulator.makeAthletes(1)[0]!.id, Simulator.defaultAthlete.id)
  })

  it.effect("at the cap a new athlete is refused with Strava's 403 before any code; connected ones re-authorize", () =>
    Effect.gen(function*() {
      const mock = yield* MockStrava.MockStrava
      assert.strictEqual((yield* exchangeAs(1001)).athlete.id, 1001)
      assert.strictEqual((yield* exchangeAs(1002)).athlete.id, 1002)
      assert.strictEqual(yield* mock.connectedAthletes(), 2)
      const refused = yield* Effect.flip(mock.approve(authorizeUrl(), { athleteId: 1003 }))
      assert.strictEqual(refused.status, 403)
      assert.include(
        refused.body,
        "Error 403: Limit of connected athletes exceeded. This app has exceeded the limit of connected athletes"
      )
      // Cancel is refused too: the page itself is never shown.
      assert.strictEqual(
        (yield* Effect.flip(mock.approve(authorizeUrl(), { athleteId: 1003, deny: true }))).status,
        403
      )
      assert.strictEqual((yield* exchangeAs(1001, { approval_prompt: "force" })).athlete.id, 1001)
      assert.strictEqual(yield* mock.connectedAthletes(), 2)
      const log = (yield* mock.log).filter((e) => e.outcome === "athlete limit exceeded")
      assert.deepStrictEqual(log.map((e) => [e.endpoint, e.status]), [["authorize", 403], ["authorize", 403]])
      // A revocation frees a place.
      assert.isTrue(yield* mock.revokeAthlete(1002))
      assert.strictEqual(yield* mock.connectedAthletes(), 1)
      assert.strictEqual((yield* exchangeAs(1003)).athlete.id, 1003)
    }).pipe(Effect.provide(Capped)))
})

describe("push subscriptions and events in the model", () => {
  const create = (mock: MockStrava.MockStravaShape, callbackValidated: boolean | undefined) =>
    mock.handle({
      method: "POST",
      path: "/push_subscriptions",
      api: true,
      query: new URLSearchParams(),
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        client_id: app.clientId,
        client_secret: app.clientSecret,
        callback_url: "http://127.0.0.1:9/webhook",
        verify_token: "vt"
      }).toString(),
      callbackValidated
    })

  it.effect("in-process, no callback can be challenged: creation fails as for a callback that does not answer", () =>
    Effect.gen(function*() {
      const mock = yield* MockStrava.MockStrava
      const outcome = yield* create(mock, undefined)
      assert.strictEqual(outcome._tag, "Respond")
      if (outcome._tag !== "Respond") return
      assert.strictEqual(outcome.response.status, 400)
      assert.deepStrictEqual(JSON.parse(outcome.response.body), {
        message: "Bad Request",
        errors: [{
          resource: "PushSubscription",
          field: "callback url",
          code: "GET to callback URL does not return 200"
        }]
      })
      assert.isUndefined(mock.simulator.pushSubscription())
    }).pipe(Effect.provide(Live)))

  it.effect("the athlete revoking makes a deauthorization event; the app's own revoke and deauthorize make none", () =>
    Effect.gen(function*() {
      const mock = yield* MockStrava.MockStrava
      yield* TestClock.setTime(Date.UTC(2026, 6, 1, 12))
      const revokedBefore = yield* exchange
      assert.isTrue(yield* mock.revokeAthlete()) // no subscription yet: Strava sends nothing
      assert.deepStrictEqual(mock.simulator.events, [])
      const created = yield* create(mock, true)
      assert.strictEqual(created._tag === "Respond" && created.response.status, 201)
      const id = mock.simulator.pushSubscription()!.id
      // The app revokes and deauthorizes itself: no event.
      const viaRevoke = yield* exchange
      yield* send(
        HttpClientRequest.post(`${web}/oauth/revoke`).pipe(
          HttpClientRequest.basicAuth(app.clientId, app.clientSecret),
          HttpClientRequest.bodyUrlParams({ token: viaRevoke.access_token })
        )
      )
      const viaDeauthorize = yield* exchange
      yield* send(
        HttpClientRequest.post(`${web}/oauth/deauthorize`).pipe(
          HttpClientRequest.bearerToken(viaDeauthorize.access_token)
        )
      )
      assert.notStrictEqual(revokedBefore.access_token, viaDeauthorize.access_token)
      assert.deepStrictEqual(mock.simulator.events, [])
      // The athlete revokes on strava.com: the event, at Strava's time.
      yield* exchange
      assert.isTrue(yield* mock.revokeAthlete())
      assert.deepStrictEqual(mock.simulator.events, [{
        aspect_type: "update",
        event_time: Date.UTC(2026, 6, 1, 12) / 1000,
        object_id: 1001,
        object_type: "athlete",
        owner_id: 1001,
        subscription_id: id,
        updates: { authorized: "false" }
      }])
    }).pipe(Effect.provide(Live)))
})
