import * as HttpClient from "@effect/platform/HttpClient"
import { assert, describe, it } from "@effect/vitest"
import { MockStrava } from "@strava-auth/testing"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"

import * as StravaOAuth from "../src/StravaOAuth.js"
import { layer, login } from "./fixtures.js"

const oauth = StravaOAuth.StravaOAuth
const hours = (n: number) => n * 3_600_000

describe("StravaOAuth", () => {
  it.effect("logs in: URL, approval, exchange; the token set has the granted scopes and the athlete", () =>
    Effect.gen(function*() {
      const tokens = yield* login({ scope: ["read", "activity:read_all"] })
      assert.deepStrictEqual(tokens.scopes, ["read", "activity:read_all"])
      assert.strictEqual(tokens.athlete?.id, 1001)
      assert.strictEqual(tokens.athlete?.firstname, "Marianne")
      assert.strictEqual(tokens.expiresAt, 6 * 3600)
      const athlete = yield* (yield* oauth).getAthlete(tokens.accessToken)
      assert.strictEqual(athlete.id, 1001)
    }).pipe(Effect.provide(layer())))

  it.effect("records the scopes the athlete left ticked, not the ones asked for", () =>
    Effect.gen(function*() {
      const tokens = yield* login({ scope: ["activity:read", "profile:read_all"], grant: ["profile:read_all"] })
      assert.deepStrictEqual(tokens.scopes, ["read", "profile:read_all"])
    }).pipe(Effect.provide(layer())))

  it.effect("sends a form body with the secret, never in the URL, and no tracing headers", () =>
    Effect.gen(function*() {
      const seen: Array<{ url: string; headers: Record<string, string>; body: string }> = []
      const base = yield* HttpClient.HttpClient
      const spy = HttpClient.make((request, url) => {
        const body = request.body._tag === "Uint8Array" ? new TextDecoder().decode(request.body.body) : ""
        seen.push({ url: url.toString(), headers: { ...request.headers }, body })
        return base.execute(request)
      })
      yield* login().pipe(Effect.provide(StravaOAuth.layer), Effect.provideService(HttpClient.HttpClient, spy))
      const token = seen.find((s) => s.url.endsWith("/oauth/token"))!
      assert.strictEqual(token.url, "https://www.strava.com/oauth/token")
      assert.strictEqual(token.headers["content-type"], "application/x-www-form-urlencoded")
      assert.include(token.body, "client_secret=mock-client-secret")
      assert.include(token.body, "grant_type=authorization_code")
      assert.notProperty(token.headers, "traceparent")
      assert.notProperty(token.headers, "b3")
    }).pipe(Effect.provide(layer())))

  it.effect("the one-hour rule: a refresh with more than an hour left returns the same tokens", () =>
    Effect.gen(function*() {
      const service = yield* oauth
      const tokens = yield* login()
      yield* TestClock.adjust("4 hours")
      const same = yield* service.refresh(tokens)
      assert.isTrue(same.sameAccessToken(tokens))
      assert.isTrue(same.sameRefreshToken(tokens))
      assert.strictEqual(same.expiresAt, tokens.expiresAt)
    }).pipe(Effect.provide(layer())))

  it.effect("rotation: within the hour a new access and refresh token are minted and the old refresh token dies", () =>
    Effect.gen(function*() {
      const service = yield* oauth
      const mock = yield* MockStrava.MockStrava
      const tokens = yield* login()
      yield* TestClock.adjust(hours(5) + 1000)
      const fresh = yield* service.refresh(tokens)
      assert.isFalse(fresh.sameAccessToken(tokens))
      assert.isFalse(fresh.sameRefreshToken(tokens))
      assert.strictEqual(fresh.expiresAt, Math.floor((hours(5) + 1000 + hours(6)) / 1000))
      assert.deepStrictEqual(fresh.scopes, tokens.scopes)
      assert.strictEqual(fresh.athlete?.id, tokens.athlete?.id)
      assert.strictEqual(yield* mock.liveRefreshToken(), Redacted.value(fresh.refreshToken))
      const stale = yield* Effect.flip(service.refresh(tokens))
      assert.strictEqual(stale._tag, "InvalidGrant")
      // the old access token keeps working until it expires
      const athlete = yield* service.getAthlete(tokens.accessToken)
      assert.strictEqual(athlete.id, 1001)
    }).pipe(Effect.provide(layer())))

  it.effect("a code is single-use: the second exchange is InvalidGrant(authorization_code)", () =>
    Effect.gen(function*() {
      const service = yield* oauth
      const mock = yield* MockStrava.MockStrava
      const url = yield* service.authorizeUrl({ redirectUri: "http://localhost/cb", state: "s" })
      const redirect = new URL(yield* mock.approve(url))
      const callback = { code: redirect.searchParams.get("code")!, scopes: [] as const }
      yield* service.exchangeCode(callback)
      const error = yield* Effect.flip(service.exchangeCode(callback))
      assert.strictEqual(error._tag, "InvalidGrant")
      assert.strictEqual(error._tag === "InvalidGrant" && error.grant, "authorization_code")
    }).pipe(Effect.provide(layer())))

  it.effect("an expired code is InvalidGrant", () =>
    Effect.gen(function*() {
      const service = yield* oauth
      const mock = yield* MockStrava.MockStrava
      const url = yield* service.authorizeUrl({ redirectUri: "http://localhost/cb", state: "s" })
      const code = new URL(yield* mock.approve(url)).searchParams.get("code")!
      yield* TestClock.adjust("11 minutes")
      const error = yield* Effect.flip(service.exchangeCode({ code, scopes: [] }))
      assert.strictEqual(error._tag, "InvalidGrant")
      assert.strictEqual(error._tag === "InvalidGrant" && error.code, "expired")
    }).pipe(Effect.provide(layer())))

  it.effect("a wrong client secret is InvalidClient", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(login())
      assert.strictEqual(error._tag, "InvalidClient")
      assert.notInclude(error.message, "wrong-secret")
    }).pipe(Effect.provide(layer({ config: { clientSecret: "wrong-secret" } }))))

  it.effect("an unknown client id is InvalidClient naming the client id", () =>
    Effect.gen(function*() {
      const service = yield* oauth
      const error = yield* Effect.flip(service.exchangeCode({ code: "whatever", scopes: [] }))
      assert.strictEqual(error._tag, "InvalidClient")
      assert.strictEqual(error._tag === "InvalidClient" && error.field, "client_id")
    }).pipe(Effect.provide(layer({ config: { clientId: "999" } }))))

  it.effect("an inactive app is AppInactive on refresh and on the API", () =>
    Effect.gen(function*() {
      const service = yield* oauth
      const mock = yield* MockStrava.MockStrava
      const tokens = yield* login()
      yield* mock.setActive(false)
      assert.strictEqual((yield* Effect.flip(service.refresh(tokens)))._tag, "AppInactive")
      assert.strictEqual((yield* Effect.flip(service.getAthlete(tokens.accessToken)))._tag, "AppInactive")
    }).pipe(Effect.provide(layer())))

  it.effect("an expired access token is Unauthorized on the API; a garbage one too", () =>
    Effect.gen(function*() {
      const service = yield* oauth
      const tokens = yield* login()
      yield* TestClock.adjust("6 hours")
      const expired = yield* Effect.flip(service.getAthlete(tokens.accessToken))
      assert.strictEqual(expired._tag, "Unauthorized")
      assert.strictEqual(expired._tag === "Unauthorized" && expired.resource, "Athlete")
      const garbage = yield* Effect.flip(service.getAthlete(Redacted.make("garbage")))
      assert.strictEqual(garbage._tag, "Unauthorized")
      assert.strictEqual(garbage._tag === "Unauthorized" && garbage.resource, "Application")
    }).pipe(Effect.provide(layer())))

  it.effect("deauthorize kills every token of the grant", () =>
    Effect.gen(function*() {
      const service = yield* oauth
      const tokens = yield* login()
      yield* service.deauthorize(tokens.accessToken)
      assert.strictEqual((yield* Effect.flip(service.getAthlete(tokens.accessToken)))._tag, "Unauthorized")
      assert.strictEqual((yield* Effect.flip(service.refresh(tokens)))._tag, "InvalidGrant")
    }).pipe(Effect.provide(layer())))

  it.effect("from 2027-06-01 (by the clock) deauthorize is never sent: it says to use revoke, and revoke still works", () =>
    Effect.gen(function*() {
      const service = yield* oauth
      const mock = yield* MockStrava.MockStrava
      const tokens = yield* login()
      yield* TestClock.setTime(StravaOAuth.deauthorizeRetiredAt)
      yield* mock.clearLog
      const retired = yield* Effect.flip(service.deauthorize(tokens.accessToken))
      assert.strictEqual(retired._tag, "UnexpectedResponse")
      assert.include(retired.message, "retired by Strava on 2027-06-01")
      assert.include(retired.message, "/oauth/revoke")
      assert.deepStrictEqual((yield* mock.log).map((e) => e.endpoint), [])
      yield* service.revoke(tokens.refreshToken, "refresh_token")
      assert.deepStrictEqual((yield* mock.log).map((e) => e.endpoint), ["revoke"])
    }).pipe(Effect.provide(layer())))

  it.effect("the mock answers deauthorize as an unknown path once it is retired", () =>
    Effect.gen(function*() {
      const mock = yield* MockStrava.MockStrava
      const tokens = yield* login()
      const retired = mock.simulator.handle({
        method: "POST",
        path: "/oauth/deauthorize",
        api: false,
        query: new URLSearchParams(),
        headers: { authorization: `Bearer ${Redacted.value(tokens.accessToken)}` },
        body: ""
      }, mock.simulator.deauthorizeRetiredAtMillis)
      assert.strictEqual(retired._tag === "Respond" && retired.response.status, 404)
    }).pipe(Effect.provide(layer())))

  it.effect("revoke with the refresh token revokes the access token too (HTTP Basic)", () =>
    Effect.gen(function*() {
      const service = yield* oauth
      const mock = yield* MockStrava.MockStrava
      const tokens = yield* login()
      yield* service.revoke(tokens.refreshToken, "refresh_token")
      assert.strictEqual((yield* Effect.flip(service.getAthlete(tokens.accessToken)))._tag, "Unauthorized")
      assert.isUndefined(yield* mock.liveRefreshToken())
      const entry = (yield* mock.log).find((e) => e.endpoint === "revoke")!
      assert.strictEqual(entry.clientId, "12345")
      assert.strictEqual(entry.outcome, "revoked")
    }).pipe(Effect.provide(layer())))

  it.effect("a 429 is RateLimited with the mock's usage, and is not retried", () =>
    Effect.gen(function*() {
      const service = yield* oauth
      const mock = yield* MockStrava.MockStrava
      const tokens = yield* login()
      yield* service.getAthlete(tokens.accessToken)
      yield* service.getAthlete(tokens.accessToken)
      const error = yield* Effect.flip(service.getAthlete(tokens.accessToken))
      assert.strictEqual(error._tag, "RateLimited")
      assert.strictEqual((yield* mock.log).filter((e) => e.endpoint === "athlete").length, 3)
    }).pipe(Effect.provide(layer({
      mock: { rateLimits: { overall: { fifteenMinutes: 2, daily: 10 }, read: { fifteenMinutes: 2, daily: 10 } } },
      config: { retries: 3 }
    }))))

  it.effect("5xx HTML is ServerError after the configured retries", () =>
    Effect.gen(function*() {
      const service = yield* oauth
      const mock = yield* MockStrava.MockStrava
      const tokens = yield* login()
      yield* TestClock.adjust(hours(5.5))
      yield* mock.inject({ endpoint: "token", fault: { _tag: "ServerError", status: 503 }, when: { times: 10 } })
      const fiber = yield* Effect.fork(service.refresh(tokens))
      yield* TestClock.adjust("1 minute")
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.strictEqual(error._tag, "ServerError")
      assert.strictEqual((yield* mock.log).filter((e) => e.grantType === "refresh_token").length, 3)
    }).pipe(Effect.provide(layer({ config: { retries: 2 } }))))

  it.effect("a transient fault is retried and the call succeeds", () =>
    Effect.gen(function*() {
      const service = yield* oauth
      const mock = yield* MockStrava.MockStrava
      const tokens = yield* login()
      yield* mock.inject({ endpoint: "athlete", fault: { _tag: "Reset" }, when: { times: 1 } })
      const fiber = yield* Effect.fork(service.getAthlete(tokens.accessToken))
      yield* TestClock.adjust("5 seconds")
      assert.strictEqual((yield* Fiber.join(fiber)).id, 1001)
    }).pipe(Effect.provide(layer({ config: { retries: 1 } }))))

  it.effect("a hang times out per attempt as TransportError(Timeout)", () =>
    Effect.gen(function*() {
      const service = yield* oauth
      const mock = yield* MockStrava.MockStrava
      const tokens = yield* login()
      yield* mock.inject({ endpoint: "athlete", fault: { _tag: "Hang" }, when: { times: 1 } })
      const fiber = yield* Effect.fork(service.getAthlete(tokens.accessToken))
      yield* TestClock.adjust("3 seconds")
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.strictEqual(error._tag, "TransportError")
      assert.strictEqual(error._tag === "TransportError" && error.reason, "Timeout")
      assert.isTrue(error.transient)
    }).pipe(Effect.provide(layer({ config: { timeout: "2 seconds" } }))))

  it.effect("a connection reset is TransportError(Transport)", () =>
    Effect.gen(function*() {
      const service = yield* oauth
      const mock = yield* MockStrava.MockStrava
      const tokens = yield* login()
      yield* mock.inject({ endpoint: "athlete", fault: { _tag: "Reset" }, when: { times: 1 } })
      const error = yield* Effect.flip(service.getAthlete(tokens.accessToken))
      assert.strictEqual(error._tag === "TransportError" && error.reason, "Transport")
    }).pipe(Effect.provide(layer())))

  it.effect("malformed JSON is a transient UnexpectedResponse that names paths, not values", () =>
    Effect.gen(function*() {
      const service = yield* oauth
      const mock = yield* MockStrava.MockStrava
      const tokens = yield* login()
      yield* TestClock.adjust(hours(5.5))
      yield* mock.inject({ endpoint: "token", fault: { _tag: "MalformedJson", processed: true }, when: { times: 1 } })
      const error = yield* Effect.flip(service.refresh(tokens))
      assert.strictEqual(error._tag, "UnexpectedResponse")
      assert.isTrue(error.transient)
    }).pipe(Effect.provide(layer())))

  it.effect("a slow answer within the timeout succeeds", () =>
    Effect.gen(function*() {
      const service = yield* oauth
      const mock = yield* MockStrava.MockStrava
      const tokens = yield* login()
      yield* mock.inject({ endpoint: "athlete", fault: { _tag: "Slow", millis: 1500 }, when: { times: 1 } })
      const fiber = yield* Effect.fork(service.getAthlete(tokens.accessToken))
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual((yield* Fiber.join(fiber)).id, 1001)
    }).pipe(Effect.provide(layer())))

  it.effect("an unreachable base URL is a TransportError naming the variables to check", () =>
    Effect.gen(function*() {
      const service = yield* oauth
      const error = yield* Effect.flip(service.exchangeCode({ code: "x", scopes: [] }))
      assert.strictEqual(error._tag, "TransportError")
      assert.include(error.message, "STRAVA_BASE_URL")
    }).pipe(Effect.provide(layer({ config: { baseUrl: "https://elsewhere.invalid" } }))))
})
