import { assert, describe, it } from "@effect/vitest"
import { MockStrava } from "@strava-auth/testing"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"

import type * as Token from "../src/Token.js"
import * as TokenSource from "../src/TokenSource.js"
import * as TokenStore from "../src/TokenStore.js"
import { layer, login } from "./fixtures.js"

const hours = (n: number) => n * 3_600_000

/** A memory store that records every write, so a test can check what was durable when. */
const recordingStore = Effect.gen(function*() {
  const inner = yield* TokenStore.makeMemory()
  const writes: Array<Token.TokenSet> = []
  let failWrites = false
  const store: TokenStore.TokenStoreShape = {
    get: inner.get,
    set: (tokens) =>
      failWrites
        ? Effect.fail(new TokenStore.TokenStoreError({ operation: "set", location: "test", detail: "disk full" }))
        : Effect.zipRight(Effect.sync(() => writes.push(tokens)), inner.set(tokens))
  }
  return { store, writes, failNextWrites: (fail: boolean) => void (failWrites = fail) }
})

/** Logs in, stores the tokens, and builds the refreshing source over the store. */
const setup = (options: TokenSource.RefreshingOptions = {}) =>
  Effect.gen(function*() {
    const mock = yield* MockStrava.MockStrava
    const recording = yield* recordingStore
    const tokens = yield* login()
    yield* recording.store.set(tokens)
    recording.writes.length = 0
    const source = yield* TokenSource.makeRefreshing(options).pipe(
      Effect.provideService(TokenStore.TokenStore, recording.store)
    )
    const refreshes = Effect.map(mock.log, (log) => log.filter((e) => e.grantType === "refresh_token"))
    return { mock, source, tokens, refreshes, ...recording }
  })

describe("TokenSource.makeRefreshing", () => {
  it.effect("hands out the stored token without refreshing while it is outside the margin", () =>
    Effect.gen(function*() {
      const { refreshes, source, tokens } = yield* setup()
      yield* TestClock.adjust(hours(5))
      const token = yield* source.get
      assert.strictEqual(Redacted.value(token), Redacted.value(tokens.accessToken))
      assert.strictEqual((yield* refreshes).length, 0)
    }).pipe(Effect.provide(layer())))

  it.effect("single flight: 100 concurrent callers inside the margin cause exactly one refresh", () =>
    Effect.gen(function*() {
      const { refreshes, source, store, tokens } = yield* setup()
      yield* TestClock.adjust(hours(5.5))
      const handed = yield* Effect.all(Array.from({ length: 100 }, () => source.get), { concurrency: "unbounded" })
      assert.strictEqual((yield* refreshes).length, 1)
      const stored = Option.getOrThrow(yield* store.get)
      assert.isFalse(stored.sameAccessToken(tokens))
      for (const token of handed) assert.strictEqual(Redacted.value(token), Redacted.value(stored.accessToken))
    }).pipe(Effect.provide(layer())))

  it.effect("writes the new token set to the store before handing out its access token", () =>
    Effect.gen(function*() {
      const { failNextWrites, mock, source, tokens, writes } = yield* setup()
      yield* TestClock.adjust(hours(5.5))
      failNextWrites(true)
      const error = yield* Effect.flip(source.get)
      assert.strictEqual(error._tag, "TokenStoreError")
      failNextWrites(false)
      // Strava rotated, the write failed, so nothing was handed out; the lost rotation is visible, not silent.
      assert.notStrictEqual(yield* mock.liveRefreshToken(), Redacted.value(tokens.refreshToken))
      const token = yield* Effect.either(source.get)
      assert.strictEqual(token._tag, "Left")
      assert.strictEqual(writes.length, 0)
    }).pipe(Effect.provide(layer())))

  it.effect("the store always holds the live refresh token across days of rotations", () =>
    Effect.gen(function*() {
      const { mock, source, store } = yield* setup()
      for (let i = 0; i < 20; i++) {
        yield* TestClock.adjust(hours(5.5))
        const token = yield* source.get
        const stored = Option.getOrThrow(yield* store.get)
        assert.strictEqual(Redacted.value(token), Redacted.value(stored.accessToken))
        assert.strictEqual(yield* mock.liveRefreshToken(), Redacted.value(stored.refreshToken))
      }
    }).pipe(Effect.provide(layer())))

  it.effect("a caller interrupted mid-refresh does not lose the rotation: the store gets the answer", () =>
    Effect.gen(function*() {
      const { mock, source, store } = yield* setup()
      yield* TestClock.adjust(hours(5.5))
      yield* mock.inject({
        endpoint: "token",
        fault: { _tag: "Slow", millis: 3000, processed: true },
        when: { times: 1 }
      })
      const caller = yield* Effect.fork(source.get)
      yield* TestClock.adjust("1 second") // the request has reached Strava, which rotates and answers slowly
      const interrupted = yield* Effect.fork(Fiber.interrupt(caller))
      yield* TestClock.adjust("3 seconds")
      yield* Fiber.join(interrupted)
      const stored = Option.getOrThrow(yield* store.get)
      assert.strictEqual(Redacted.value(stored.refreshToken), yield* mock.liveRefreshToken())
    }).pipe(Effect.provide(layer())))

  it.effect("the same token coming back (margin over an hour) is normal and does not loop", () =>
    Effect.gen(function*() {
      const { refreshes, source, tokens } = yield* setup({ margin: "2 hours" })
      yield* TestClock.adjust(hours(4.5))
      for (let i = 0; i < 50; i++) {
        assert.strictEqual(Redacted.value(yield* source.get), Redacted.value(tokens.accessToken))
      }
      assert.strictEqual((yield* refreshes).length, 1)
      assert.strictEqual((yield* refreshes)[0]!.outcome, "same token")
      yield* TestClock.adjust(hours(0.6))
      const fresh = yield* source.get
      assert.notStrictEqual(Redacted.value(fresh), Redacted.value(tokens.accessToken))
      assert.strictEqual((yield* refreshes).length, 2)
    }).pipe(Effect.provide(layer())))

  it.effect("a transient failure keeps serving the valid token and backs off instead of retrying per call", () =>
    Effect.gen(function*() {
      const { mock, refreshes, source, tokens } = yield* setup()
      yield* TestClock.adjust(hours(5.5))
      yield* mock.inject({ endpoint: "token", fault: { _tag: "ServerError", status: 502 }, when: { times: 1000 } })
      for (let i = 0; i < 10; i++) {
        assert.strictEqual(Redacted.value(yield* source.get), Redacted.value(tokens.accessToken))
      }
      assert.strictEqual((yield* refreshes).length, 1)
      yield* TestClock.adjust("1100 millis")
      yield* source.get
      assert.strictEqual((yield* refreshes).length, 2)
      yield* mock.clearFaults
      yield* TestClock.adjust("3 seconds")
      const fresh = yield* source.get
      assert.notStrictEqual(Redacted.value(fresh), Redacted.value(tokens.accessToken))
    }).pipe(Effect.provide(layer())))

  it.effect("an expired token while Strava is down fails with a transient error, not a stale token", () =>
    Effect.gen(function*() {
      const { mock, source } = yield* setup()
      yield* TestClock.adjust(hours(6) + 1000)
      yield* mock.inject({ endpoint: "token", fault: { _tag: "ServerError", status: 503 }, when: { times: 1000 } })
      const first = yield* Effect.flip(source.get)
      assert.strictEqual(first._tag, "ServerError")
      const second = yield* Effect.flip(source.get)
      assert.isTrue(second.transient)
    }).pipe(Effect.provide(layer())))

  it.effect("a revoked grant fails with InvalidGrant, which says to log in again", () =>
    Effect.gen(function*() {
      const { mock, source } = yield* setup()
      yield* mock.revokeAthlete()
      yield* TestClock.adjust(hours(5.5))
      const error = yield* Effect.flip(source.get)
      assert.strictEqual(error._tag, "InvalidGrant")
      assert.include(error.message, "Log in again")
    }).pipe(Effect.provide(layer())))

  it.effect("an empty store is LoginRequired", () =>
    Effect.gen(function*() {
      const source = yield* TokenSource.makeRefreshing().pipe(Effect.provide(TokenStore.layerMemory()))
      const error = yield* Effect.flip(source.get)
      assert.strictEqual(error._tag, "LoginRequired")
      assert.include(error.message, "strava-auth login")
    }).pipe(Effect.provide(layer())))

  it.effect("invalidate refreshes only when the rejected token is still the current one", () =>
    Effect.gen(function*() {
      const { mock, refreshes, source, tokens } = yield* setup()
      yield* mock.expireAccessTokens()
      const fresh = yield* source.invalidate(tokens.accessToken)
      assert.notStrictEqual(Redacted.value(fresh), Redacted.value(tokens.accessToken))
      const again = yield* source.invalidate(tokens.accessToken)
      assert.strictEqual(Redacted.value(again), Redacted.value(fresh))
      assert.strictEqual((yield* refreshes).length, 1)
    }).pipe(Effect.provide(layer())))
})
