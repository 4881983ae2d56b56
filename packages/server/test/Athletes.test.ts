import * as HttpClient from "@effect/platform/HttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as Callback from "@strava-auth/core/Callback"
import * as GrantStore from "@strava-auth/core/GrantStore"
import * as OAuthState from "@strava-auth/core/OAuthState"
import * as StravaConfig from "@strava-auth/core/StravaConfig"
import * as StravaOAuth from "@strava-auth/core/StravaOAuth"
import { MockStrava, Simulator } from "@strava-auth/testing"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"

import * as Athletes from "../src/Athletes.js"
import * as SqlGrantStore from "../src/SqlGrantStore.js"
import { freshDatabase, pool } from "./fixtures.js"

const athletes: ReadonlyArray<Simulator.Athlete> = [1001, 2002, 3003].map((id) => ({
  ...Simulator.defaultAthlete,
  id,
  username: `athlete${id}`,
  firstname: `First${id}`
}))

/** One replica: its own pool, store and engine, against the shared mock (its HttpClient). */
const replica = (url: Redacted.Redacted<string>, mock: MockStrava.MockStravaShape) =>
  Effect.gen(function*() {
    const base = Layer.mergeAll(
      Layer.succeed(HttpClient.HttpClient, MockStrava.httpClient(mock)),
      StravaConfig.layer({ clientId: mock.app.clientId, clientSecret: mock.app.clientSecret, retries: 0 })
    )
    const oauth = StravaOAuth.layer.pipe(Layer.provideMerge(base))
    const store = SqlGrantStore.layerBoth().pipe(Layer.provide(pool(url)))
    const all = Athletes.layer().pipe(Layer.provideMerge(Layer.merge(oauth, store)))
    const context = yield* Layer.build(all)
    return {
      athletes: Context.get(context, Athletes.Athletes),
      store: Context.get(context, GrantStore.GrantStore),
      oauth: Context.get(context, StravaOAuth.StravaOAuth)
    }
  }).pipe(Effect.orDie)

/** An athlete connects (authorize page, callback, exchange) and the grant is stored under their id. */
const connect = (
  mock: MockStrava.MockStravaShape,
  r: { readonly oauth: StravaOAuth.StravaOAuthShape; readonly store: GrantStore.GrantStoreShape },
  athleteId: number
) =>
  Effect.gen(function*() {
    const state = yield* OAuthState.generate
    const url = yield* r.oauth.authorizeUrl({ redirectUri: "http://localhost/cb", state, scope: ["activity:read"] })
    const redirect = yield* mock.approve(url, { athleteId })
    const tokens = yield* r.oauth.exchangeCode(yield* Callback.parse(redirect, { state }))
    yield* r.store.put(String(tokens.athlete!.id), tokens)
    return tokens
  }).pipe(Effect.orDie)

const refreshesIn = (log: ReadonlyArray<Simulator.LogEntry>) =>
  log.filter((e) => e.endpoint === "token" && e.grantType === "refresh_token").length

describe("Athletes over PostgreSQL, two replicas, one mock Strava", () => {
  it.scoped("tokenFor: a due grant asked for by 20 requests on two replicas is refreshed exactly once", () =>
    Effect.gen(function*() {
      const mock = yield* MockStrava.make({ athletes })
      const url = yield* freshDatabase
      const a = yield* replica(url, mock)
      const b = yield* replica(url, mock)
      const first = yield* connect(mock, a, athletes[0]!.id)
      const id = athletes[0]!.id
      assert.strictEqual(Redacted.value(yield* a.athletes.tokenFor(id)), Redacted.value(first.accessToken))
      yield* TestClock.adjust(Duration.minutes(320)) // 40 minutes left: inside the margin and Strava's hour
      yield* mock.clearLog
      const tokens = yield* Effect.forEach(
        Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).athletes),
        (replicaAthletes) => replicaAthletes.tokenFor(id),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(refreshesIn(yield* mock.log), 1)
      const distinct = new Set(tokens.map(Redacted.value))
      assert.strictEqual(distinct.size, 1)
      assert.notStrictEqual([...distinct][0], Redacted.value(first.accessToken))
      // The stored refresh token is the live one at Strava: nothing was lost to a race.
      const stored = Option.getOrThrow(yield* b.store.get(String(id)))
      assert.strictEqual(Redacted.value(stored.refreshToken), yield* mock.liveRefreshToken(id))
    }))

  it.scoped("an unknown athlete is LoginRequired, and a bad id says what an athlete id is", () =>
    Effect.gen(function*() {
      const mock = yield* MockStrava.make({ athletes })
      const a = yield* replica(yield* freshDatabase, mock)
      const missing = yield* Effect.flip(a.athletes.tokenFor(424242))
      assert.strictEqual(missing._tag, "LoginRequired")
      const bad = yield* Effect.flip(a.athletes.tokenFor("1; drop table"))
      assert.strictEqual(bad._tag, "InvalidAthleteId")
      assert.include(bad.message, "not a Strava athlete id")
    }))

  it.scoped("clientFor calls the API as the athlete; each athlete's client gets their own data", () =>
    Effect.gen(function*() {
      const mock = yield* MockStrava.make({ athletes })
      const a = yield* replica(yield* freshDatabase, mock)
      for (const athlete of athletes) yield* connect(mock, a, athlete.id)
      for (const athlete of athletes) {
        const client = yield* a.athletes.clientFor(athlete.id)
        const body = yield* client.get("/athlete").pipe(Effect.flatMap((r) => r.json), Effect.scoped)
        assert.strictEqual((body as { id: number }).id, athlete.id)
      }
    }))

  it.scoped("disconnect revokes at Strava, then removes the grant, and the other replica sees it gone at once", () =>
    Effect.gen(function*() {
      const mock = yield* MockStrava.make({ athletes })
      const url = yield* freshDatabase
      const a = yield* replica(url, mock)
      const b = yield* replica(url, mock)
      const id = athletes[1]!.id
      yield* connect(mock, a, id)
      yield* b.athletes.tokenFor(id) // b holds the grant in its engine
      assert.strictEqual(yield* a.athletes.disconnect(id), "revoked")
      assert.isUndefined(yield* mock.liveRefreshToken(id))
      assert.isTrue(Option.isNone(yield* a.store.get(String(id))))
      assert.strictEqual((yield* Effect.flip(b.athletes.tokenFor(id)))._tag, "LoginRequired")
      assert.strictEqual(yield* a.athletes.disconnect(id), "not connected")
    }))

  it.scoped("disconnect keeps the grant when Strava does not confirm the revoke", () =>
    Effect.gen(function*() {
      const mock = yield* MockStrava.make({ athletes })
      const a = yield* replica(yield* freshDatabase, mock)
      const id = athletes[2]!.id
      yield* connect(mock, a, id)
      yield* mock.inject({ endpoint: "revoke", fault: { _tag: "ServerError", status: 503 }, when: { times: 1 } })
      const error = yield* Effect.flip(a.athletes.disconnect(id))
      assert.strictEqual(error._tag, "ServerError")
      assert.isTrue(Option.isSome(yield* a.store.get(String(id))))
      assert.isDefined(yield* mock.liveRefreshToken(id))
      assert.strictEqual(yield* a.athletes.disconnect(id), "revoked") // tried again: now it goes
    }))

  it.scoped("disconnect removes the grant when Strava says it is gone already (the refresh token refused)", () =>
    Effect.gen(function*() {
      const mock = yield* MockStrava.make({ athletes })
      const a = yield* replica(yield* freshDatabase, mock)
      const id = athletes[0]!.id
      yield* connect(mock, a, id)
      yield* mock.inject({
        endpoint: "revoke",
        fault: { _tag: "Envelope", status: 400, resource: "RefreshToken", field: "refresh_token", code: "invalid" },
        when: { times: 1 }
      })
      assert.strictEqual(yield* a.athletes.disconnect(id), "revoked")
      assert.isTrue(Option.isNone(yield* a.store.get(String(id))))
    }))
})
