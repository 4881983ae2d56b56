import { assert, describe, it } from "@effect/vitest"
import { GrantStore } from "@strava-auth/core/GrantStore"
import type { MockStrava } from "@strava-auth/testing"
import { Simulator } from "@strava-auth/testing"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"

import type * as ConnectModule from "../src/Connect.js"
import * as Connect from "../src/Connect.js"
import { browser, freshDatabase, mockServer, serveReplica } from "./fixtures.js"

const athletes: ReadonlyArray<Simulator.Athlete> = [5001, 5002].map((id) => ({
  ...Simulator.defaultAthlete,
  id,
  username: `athlete${id}`,
  firstname: `First${id}`
}))

/** A mock Strava server and two replicas of the app on one database, behind one public URL (replica A's). */
const setup = (options: Partial<ConnectModule.Options> = {}) =>
  Effect.gen(function*() {
    const { mock, server } = yield* mockServer({ athletes })
    const database = yield* freshDatabase
    const connected: Array<ConnectModule.Connected> = []
    const router = (publicUrl: string) =>
      Connect.router({
        publicUrl,
        onConnected: (c) => Effect.sync(() => connected.push(c)),
        codeRetryDelay: "100 millis",
        ...options
      })
    const a = yield* serveReplica({ database, mock: server, app: mock.app, router })
    const b = yield* serveReplica({
      database,
      mock: server,
      app: mock.app,
      router: () => router(a.url),
      publicUrl: a.url
    })
    const store = Context.get(a.context, GrantStore)
    return { mock, a, b, store, connected }
  })

/** Begins a connect on `replica` in `who`'s browser and answers Strava's page: the callback URL. */
const begin = (
  mock: MockStrava.MockStravaShape,
  replicaUrl: string,
  who: ReturnType<typeof browser>,
  decision: MockStrava.Decision,
  query = ""
) =>
  Effect.gen(function*() {
    const start = yield* Effect.promise(() => who.request(`${replicaUrl}/strava/connect${query}`))
    assert.strictEqual(start.status, 302)
    assert.isTrue(who.jar.has(Connect.cookieName))
    return yield* mock.approve(start.location!, decision).pipe(Effect.orDie)
  })

const onReplica = (callbackUrl: string, replicaUrl: string) => {
  const url = new URL(callbackUrl)
  return `${replicaUrl}${url.pathname}${url.search}`
}

describe("Connect with Strava: routes on two replicas and one PostgreSQL", () => {
  it.live("a connect started on replica A completes on replica B: the grant is stored under the athlete's id", () =>
    Effect.gen(function*() {
      const { a, b, connected, mock, store } = yield* setup()
      const who = browser()
      const callback = yield* begin(mock, a.url, who, { athleteId: 5002 })
      const done = yield* Effect.promise(() => who.request(onReplica(callback, b.url)))
      assert.strictEqual(done.status, 303)
      assert.strictEqual(done.location, "/")
      assert.isFalse(who.jar.has(Connect.cookieName)) // the binding cookie is cleared
      const stored = Option.getOrThrow(yield* store.get("5002"))
      assert.strictEqual(stored.athlete?.id, 5002)
      assert.deepStrictEqual(stored.scopes, ["read", "activity:read"])
      assert.strictEqual(connected.length, 1)
      assert.strictEqual(connected[0]!.athleteId, "5002")
      assert.isFalse(connected[0]!.reconnected)
    }).pipe(Effect.scoped))

  it.live("the same callback replayed is refused: a state is used once", () =>
    Effect.gen(function*() {
      const { a, mock } = yield* setup()
      const who = browser()
      const callback = yield* begin(mock, a.url, who, { athleteId: 5001 })
      const cookie = who.jar.get(Connect.cookieName)!
      assert.strictEqual((yield* Effect.promise(() => who.request(onReplica(callback, a.url)))).status, 303)
      who.jar.set(Connect.cookieName, cookie) // even with the cookie put back
      const again = yield* Effect.promise(() => who.request(onReplica(callback, a.url)))
      assert.strictEqual(again.status, 400)
      assert.include(again.text, "expired or was already used")
    }).pipe(Effect.scoped))

  it.live("a callback in a browser that did not start the connect is refused, and nothing is stored", () =>
    Effect.gen(function*() {
      const { a, mock, store } = yield* setup()
      const victim = browser()
      const attacker = browser()
      // The attacker starts a connect and sends the callback URL (with their code) to the victim.
      const callback = yield* begin(mock, a.url, attacker, { athleteId: 5001 })
      const answer = yield* Effect.promise(() => victim.request(onReplica(callback, a.url)))
      assert.strictEqual(answer.status, 400)
      assert.include(answer.text, "not started in this browser")
      assert.isTrue(Option.isNone(yield* store.get("5001")))
      // A made-up state is refused as unknown.
      const forged = yield* Effect.promise(() => victim.request(`${a.url}/strava/callback?state=made-up&code=x`))
      assert.strictEqual(forged.status, 400)
      assert.include(forged.text, "expired or was already used")
      const none = yield* Effect.promise(() => victim.request(`${a.url}/strava/callback?code=x`))
      assert.strictEqual(none.status, 400)
      assert.include(none.text, "not an answer from Strava")
    }).pipe(Effect.scoped))

  it.live("Cancel on Strava's page and an unticked scope are pages that say what to do; nothing is stored", () =>
    Effect.gen(function*() {
      const { a, mock, store } = yield* setup()
      const who = browser()
      const denied = yield* Effect.promise(
        () =>
          Effect.runPromise(begin(mock, a.url, who, { athleteId: 5001, deny: true })).then((cb) =>
            who.request(onReplica(cb, a.url))
          )
      )
      assert.strictEqual(denied.status, 403)
      assert.include(denied.text, "You did not connect your Strava account")
      assert.include(denied.text, "/strava/connect")
      const unticked = yield* begin(mock, a.url, who, { athleteId: 5001, scopes: ["read"] })
      const page = yield* Effect.promise(() => who.request(onReplica(unticked, a.url)))
      assert.strictEqual(page.status, 403)
      assert.include(page.text, "needs a permission you did not tick")
      assert.include(page.text, "activity:read")
      assert.isTrue(Option.isNone(yield* store.get("5001")))
    }).pipe(Effect.scoped))

  it.live("an athlete who connects again gets their grant back with the scopes of the new consent", () =>
    Effect.gen(function*() {
      const { a, connected, mock, store } = yield* setup({
        scopes: ["read", "activity:read", "activity:read_all"],
        requiredScopes: ["activity:read"]
      })
      const who = browser()
      const first = yield* begin(mock, a.url, who, { athleteId: 5001, scopes: ["activity:read"] })
      yield* Effect.promise(() => who.request(onReplica(first, a.url)))
      assert.deepStrictEqual(Option.getOrThrow(yield* store.get("5001")).scopes, ["read", "activity:read"])
      yield* mock.revokeAthlete(5001) // revoked on strava.com, then connects again with more ticked
      const second = yield* begin(mock, a.url, who, {
        athleteId: 5001,
        scopes: ["activity:read", "activity:read_all"]
      })
      assert.strictEqual((yield* Effect.promise(() => who.request(onReplica(second, a.url)))).status, 303)
      const stored = Option.getOrThrow(yield* store.get("5001"))
      assert.deepStrictEqual(stored.scopes, ["read", "activity:read", "activity:read_all"])
      assert.strictEqual(connected.length, 2)
      assert.isTrue(connected[1]!.reconnected)
    }).pipe(Effect.scoped))

  it.live("disconnect: refused unless the app allows it, refused from another site, else revoked then removed", () =>
    Effect.gen(function*() {
      const refusing = yield* setup()
      const who = browser()
      const cb = yield* begin(refusing.mock, refusing.a.url, who, { athleteId: 5001 })
      yield* Effect.promise(() => who.request(onReplica(cb, refusing.a.url)))
      const post = (url: string, headers: Record<string, string> = {}) =>
        who.request(`${url}/strava/disconnect`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
          body: "athlete_id=5001"
        })
      const refused = yield* Effect.promise(() => post(refusing.a.url))
      assert.strictEqual(refused.status, 403)
      assert.isTrue(Option.isSome(yield* refusing.store.get("5001")))

      const allowing = yield* setup({ mayDisconnect: () => Effect.succeed(true) })
      const cb2 = yield* begin(allowing.mock, allowing.a.url, who, { athleteId: 5001 })
      yield* Effect.promise(() => who.request(onReplica(cb2, allowing.a.url)))
      const crossSite = yield* Effect.promise(() => post(allowing.b.url, { origin: "https://evil.example" }))
      assert.strictEqual(crossSite.status, 403)
      assert.isTrue(Option.isSome(yield* allowing.store.get("5001")))
      const done = yield* Effect.promise(() => post(allowing.b.url, { origin: allowing.a.url }))
      assert.strictEqual(done.status, 303)
      assert.isTrue(Option.isNone(yield* allowing.store.get("5001")))
      assert.isUndefined(yield* allowing.mock.liveRefreshToken(5001))
    }).pipe(Effect.scoped))

  it.live("a fresh code refused as AuthorizationCode/code/invalid is tried once more after the delay, then accepted", () =>
    Effect.gen(function*() {
      const { a, mock, store } = yield* setup()
      const who = browser()
      const callback = yield* begin(mock, a.url, who, { athleteId: 5001 })
      const refusal = {
        _tag: "Envelope",
        status: 400,
        resource: "AuthorizationCode",
        field: "code",
        code: "invalid"
      } as const
      yield* mock.inject({ endpoint: "token", fault: refusal, when: { times: 1 } })
      const done = yield* Effect.promise(() => who.request(onReplica(callback, a.url)))
      assert.strictEqual(done.status, 303)
      assert.isTrue(Option.isSome(yield* store.get("5001")))
      const exchanges = (yield* mock.log).filter((e) => e.endpoint === "token" && e.grantType === "authorization_code")
      assert.strictEqual(exchanges.length, 2)
      assert.isAtLeast(exchanges[1]!.at - exchanges[0]!.at, 100) // the configured delay (2 s by default)
    }).pipe(Effect.scoped))

  it.live("a code refused twice is reported on a page, and nothing is stored; other refusals are not retried", () =>
    Effect.gen(function*() {
      const { a, mock, store } = yield* setup()
      const who = browser()
      const callback = yield* begin(mock, a.url, who, { athleteId: 5001 })
      const refusal = {
        _tag: "Envelope",
        status: 400,
        resource: "AuthorizationCode",
        field: "code",
        code: "invalid"
      } as const
      yield* mock.inject({ endpoint: "token", fault: refusal, when: { times: 2 } })
      const page = yield* Effect.promise(() => who.request(onReplica(callback, a.url)))
      assert.strictEqual(page.status, 502)
      assert.include(page.text, "Strava did not complete the connection")
      assert.isTrue(Option.isNone(yield* store.get("5001")))
      // A used code (RequestToken/code/invalid) is refused for good: one attempt only.
      yield* mock.clearLog
      const second = yield* begin(mock, a.url, who, { athleteId: 5001 })
      yield* mock.inject({
        endpoint: "token",
        fault: { _tag: "Envelope", status: 400, resource: "RequestToken", field: "code", code: "invalid" },
        when: { times: 1 }
      })
      assert.strictEqual((yield* Effect.promise(() => who.request(onReplica(second, a.url)))).status, 502)
      const exchanges = (yield* mock.log).filter((e) => e.endpoint === "token" && e.grantType === "authorization_code")
      assert.strictEqual(exchanges.length, 1)
    }).pipe(Effect.scoped))

  it.live("next= brings the athlete back to a page of this site; anything else goes to the default page", () =>
    Effect.gen(function*() {
      const { a, b, mock } = yield* setup()
      const cases: ReadonlyArray<readonly [string, string]> = [
        ["?next=%2Fsettings%2Fstrava%3Ftab%3D1", "/settings/strava?tab=1"],
        ["?next=%2F%2Fevil.example%2Fx", "/"],
        ["?next=https%3A%2F%2Fevil.example%2F", "/"],
        ["?next=%2F%5Cevil.example", "/"],
        ["", "/"]
      ]
      for (const [query, expected] of cases) {
        const who = browser()
        const callback = yield* begin(mock, a.url, who, { athleteId: 5001 }, query)
        const done = yield* Effect.promise(() => who.request(onReplica(callback, b.url)))
        assert.strictEqual(done.status, 303)
        assert.strictEqual(done.location, expected, query)
      }
    }).pipe(Effect.scoped))
})
