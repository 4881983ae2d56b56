import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { assert, describe, it } from "@effect/vitest"
import * as StravaConfig from "@strava-auth/core/StravaConfig"
import * as StravaError from "@strava-auth/core/StravaError"
import * as StravaOAuth from "@strava-auth/core/StravaOAuth"
import type { Simulator } from "@strava-auth/testing"
import { MockStrava } from "@strava-auth/testing"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"

import * as RateBudget from "../src/RateBudget.js"

const limits: Simulator.RateLimits = {
  overall: { fifteenMinutes: 6, daily: 9 },
  read: { fifteenMinutes: 4, daily: 100 }
}

/** A replica: its own budget over the shared mock. */
const replica = (mock: MockStrava.MockStravaShape) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      RateBudget.layer.pipe(Layer.provide(Layer.succeed(HttpClient.HttpClient, MockStrava.httpClient(mock))))
    )
    const client = Context.get(context, HttpClient.HttpClient)
    const budget = Context.get(context, RateBudget.RateBudget)
    const oauth = yield* StravaOAuth.make.pipe(
      Effect.provide(context),
      Effect.provide(
        StravaConfig.layer({ clientId: mock.app.clientId, clientSecret: mock.app.clientSecret, retries: 0 })
      )
    )
    return { client, budget, oauth }
  })

const apiCalls = (log: ReadonlyArray<Simulator.LogEntry>) => log.filter((e) => e.endpoint === "athlete").length

/** Connects the mock's athlete and returns an access token (the exchange is a token call: never counted). */
const tokenOf = (mock: MockStrava.MockStravaShape, oauth: StravaOAuth.StravaOAuthShape) =>
  Effect.gen(function*() {
    const url = yield* oauth.authorizeUrl({ redirectUri: "http://localhost/cb", state: "s" })
    const redirect = yield* mock.approve(url)
    const code = new URL(redirect).searchParams.get("code")!
    return yield* oauth.exchangeCode({ code, scopes: ["read"] })
  }).pipe(Effect.orDie)

const getAthlete = (client: HttpClient.HttpClient, token: string) =>
  client.execute(
    HttpClientRequest.get("https://www.strava.com/api/v3/athlete").pipe(HttpClientRequest.bearerToken(token))
  ).pipe(Effect.map((r) => ({ status: r.status, spent: r.headers["x-strava-auth-budget"] })), Effect.orDie)

describe("RateBudget: one budget for the app, learned from Strava's answers", () => {
  it.scoped("once the read window is spent, calls fail at once with 429 and never reach Strava", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.UTC(2026, 11, 2, 10, 1))
      const mock = yield* MockStrava.make({ rateLimits: limits })
      const r = yield* replica(mock)
      const tokens = yield* tokenOf(mock, r.oauth)
      const token = Redacted.value(tokens.accessToken)
      const answers = []
      for (let i = 0; i < 6; i++) answers.push(yield* getAthlete(r.client, token))
      assert.deepStrictEqual(answers.map((a) => a.status), [200, 200, 200, 200, 429, 429])
      assert.deepStrictEqual(answers.map((a) => a.spent), [
        undefined,
        undefined,
        undefined,
        undefined,
        "spent",
        "spent"
      ])
      assert.strictEqual(apiCalls(yield* mock.log), 4) // the refused calls were never sent
      // Through core's classification it is RateLimited, retrying at the quarter hour's end.
      const error = yield* Effect.flip(r.oauth.getAthlete(tokens.accessToken))
      assert.instanceOf(error, StravaError.RateLimited)
      assert.strictEqual((error as StravaError.RateLimited).retryAt, Date.UTC(2026, 11, 2, 10, 15))
      // A token refresh still goes: Strava does not count it.
      const refreshed = yield* Effect.either(r.oauth.refresh(tokens))
      assert.isTrue(refreshed._tag === "Right")
      // The next quarter hour the window is fresh again.
      yield* TestClock.adjust(Duration.minutes(14))
      assert.strictEqual((yield* getAthlete(r.client, token)).status, 200)
    }))

  it.scoped("a replica learns the usage of the others from the headers of its own next answer", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.UTC(2026, 11, 2, 10, 31))
      const mock = yield* MockStrava.make({ rateLimits: limits })
      const a = yield* replica(mock)
      const b = yield* replica(mock)
      const token = Redacted.value((yield* tokenOf(mock, a.oauth)).accessToken)
      for (let i = 0; i < 3; i++) assert.strictEqual((yield* getAthlete(b.client, token)).status, 200)
      // a has sent nothing yet; its first answer says 4 of 4 read calls are used app-wide.
      assert.strictEqual((yield* getAthlete(a.client, token)).status, 200)
      assert.strictEqual((yield* getAthlete(a.client, token)).spent, "spent")
      assert.strictEqual(apiCalls(yield* mock.log), 4)
      const snapshot = yield* a.budget.snapshot
      assert.strictEqual(snapshot.read.usage.fifteenMinutes, 4)
      assert.strictEqual(snapshot.spentUntil, Date.UTC(2026, 11, 2, 10, 45))
    }))

  it.scoped("a spent daily window holds calls until midnight UTC, and says so in Retry-After", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.UTC(2026, 11, 2, 23, 0))
      const daily: Simulator.RateLimits = {
        overall: { fifteenMinutes: 100, daily: 2 },
        read: { fifteenMinutes: 100, daily: 100 }
      }
      const mock = yield* MockStrava.make({ rateLimits: daily })
      const r = yield* replica(mock)
      const token = Redacted.value((yield* tokenOf(mock, r.oauth)).accessToken)
      yield* getAthlete(r.client, token)
      yield* getAthlete(r.client, token)
      const refused = yield* r.client.execute(
        HttpClientRequest.get("https://www.strava.com/api/v3/athlete").pipe(HttpClientRequest.bearerToken(token))
      ).pipe(Effect.orDie)
      assert.strictEqual(refused.status, 429)
      assert.strictEqual(refused.headers["retry-after"], String(60 * 60))
      yield* TestClock.adjust(Duration.minutes(30))
      assert.strictEqual((yield* getAthlete(r.client, token)).status, 429) // the next quarter, same day: still spent
      yield* TestClock.adjust(Duration.minutes(30))
      assert.strictEqual((yield* getAthlete(r.client, token)).status, 200)
    }))
})
