import { assert, describe, it } from "@effect/vitest"
import { MockStrava } from "@strava-auth/testing"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"

import * as GrantStore from "../src/GrantStore.js"
import * as RefreshEngine from "../src/RefreshEngine.js"
import type * as Token from "../src/Token.js"
import * as TokenSource from "../src/TokenSource.js"
import { layer, login } from "./fixtures.js"

const hours = (n: number) => n * 3_600_000
const key = GrantStore.defaultKey

/** A memory store that records every write and can be made to fail them, so a test can check what was durable when. */
const recordingStore = Effect.gen(function*() {
  const inner = yield* GrantStore.makeMemory()
  const writes: Array<Token.TokenSet> = []
  let failWrites = false
  const store: GrantStore.GrantStoreShape = {
    ...inner,
    put: (key, tokens, options) =>
      failWrites
        ? Effect.fail(
          new GrantStore.GrantStoreError({ key, reason: "Io", location: "test", detail: "disk full" })
        )
        : Effect.tap(inner.put(key, tokens, options), () => Effect.sync(() => writes.push(tokens)))
  }
  return { store, writes, failWrites: (fail: boolean) => void (failWrites = fail) }
})

/**
 * Logs in, stores the tokens, and builds the refreshing source over the store: `TokenSource.makeRefreshing`,
 * or, with `engine: true`, the same thing spelled out (`RefreshEngine.make` with the in-process executor and
 * `TokenSource.fromEngine`) so that a test can look at the grant's state.
 */
const setup = (options: TokenSource.RefreshingOptions & { readonly engine?: boolean } = {}) =>
  Effect.gen(function*() {
    const mock = yield* MockStrava.MockStrava
    const recording = yield* recordingStore
    const tokens = yield* login()
    yield* recording.store.put(key, tokens)
    recording.writes.length = 0
    const built = yield* Effect.gen(function*() {
      if (options.engine !== true) return { engine: undefined, source: yield* TokenSource.makeRefreshing(options) }
      const engine = yield* RefreshEngine.make({ margin: options.margin, execute: yield* RefreshEngine.inProcess })
      return { engine, source: TokenSource.fromEngine(engine, key) }
    }).pipe(Effect.provideService(GrantStore.GrantStore, recording.store))
    const refreshes = Effect.map(mock.log, (log) => log.filter((e) => e.grantType === "refresh_token"))
    const stored = Effect.map(recording.store.get(key), Option.getOrThrow)
    return { mock, tokens, refreshes, stored, ...built, ...recording }
  })

/** Runs `effect` while the TestClock moves on by `millis` (for the store's write retries and Strava's delays). */
const during = <A, E, R>(millis: number, effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(effect)
    yield* TestClock.adjust(millis)
    return yield* Fiber.join(fiber)
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
      const { refreshes, source, stored, tokens } = yield* setup()
      yield* TestClock.adjust(hours(5.5))
      const handed = yield* Effect.all(Array.from({ length: 100 }, () => source.get), { concurrency: "unbounded" })
      assert.strictEqual((yield* refreshes).length, 1)
      const now = yield* stored
      assert.isFalse(now.sameAccessToken(tokens))
      for (const token of handed) assert.strictEqual(Redacted.value(token), Redacted.value(now.accessToken))
    }).pipe(Effect.provide(layer())))

  it.effect("a failed write keeps the rotated set, serves the old token meanwhile, and writes the kept set later", () =>
    Effect.gen(function*() {
      const { engine, failWrites, mock, refreshes, source, stored, tokens, writes } = yield* setup({ engine: true })
      const states = () => engine!.state(key)
      yield* TestClock.adjust(hours(5.5)) // 30 minutes left: due
      failWrites(true)
      // Strava rotates; the write fails after its retries; the caller gets the old, still valid token.
      const first = yield* during(5_000, source.get)
      assert.strictEqual(Redacted.value(first), Redacted.value(tokens.accessToken))
      assert.strictEqual((yield* refreshes).length, 1)
      const live = yield* mock.liveRefreshToken()
      assert.notStrictEqual(live, Redacted.value(tokens.refreshToken))
      const retrying = states()
      assert.strictEqual(retrying._tag, "Retrying")
      if (retrying._tag !== "Retrying") return
      assert.strictEqual(retrying.lastError._tag, "GrantUnsaved")
      const unsaved = retrying.unsaved
      assert.isDefined(unsaved)
      assert.strictEqual(Redacted.value(unsaved!.tokens.refreshToken), live) // the set is kept, not dropped
      assert.isFalse(unsaved!.tokens.sameAccessToken(tokens))
      assert.strictEqual(Redacted.value((yield* stored).refreshToken), Redacted.value(tokens.refreshToken))
      // While the store refuses writes: the old token is served, the unsaved access token never is, and the
      // retries write the kept set without asking Strava again (its refresh token is the only live one).
      for (let i = 0; i < 5; i++) {
        const token = yield* during(10_000, source.get)
        assert.strictEqual(Redacted.value(token), Redacted.value(tokens.accessToken))
        assert.notStrictEqual(Redacted.value(token), Redacted.value(unsaved!.tokens.accessToken))
        const state = states()
        assert.strictEqual(state._tag, "Retrying")
        assert.strictEqual(state._tag === "Retrying" ? state.unsaved?.tokens : undefined, unsaved!.tokens)
      }
      assert.strictEqual(writes.length, 0)
      // The store accepts writes again: the next attempt writes the kept set, and only then is it handed out.
      failWrites(false)
      yield* TestClock.adjust(RefreshEngine.defaultFloor) // past the pending backoff (the fifth: 16 s + 20 %)
      const fresh = yield* during(5_000, source.get)
      assert.strictEqual(writes.length, 1)
      assert.strictEqual(writes[0], unsaved!.tokens)
      assert.strictEqual(Redacted.value(fresh), Redacted.value(unsaved!.tokens.accessToken))
      assert.strictEqual(Redacted.value((yield* stored).refreshToken), yield* mock.liveRefreshToken())
      assert.strictEqual(states()._tag, "Active")
      assert.strictEqual((yield* refreshes).length, 1)
    }).pipe(Effect.provide(layer())))

  it.effect("the store always holds the live refresh token across days of rotations", () =>
    Effect.gen(function*() {
      const { mock, source, stored } = yield* setup()
      for (let i = 0; i < 20; i++) {
        yield* TestClock.adjust(hours(5.5))
        const token = yield* source.get
        const now = yield* stored
        assert.strictEqual(Redacted.value(token), Redacted.value(now.accessToken))
        assert.strictEqual(yield* mock.liveRefreshToken(), Redacted.value(now.refreshToken))
      }
    }).pipe(Effect.provide(layer())))

  it.effect("a caller interrupted mid-refresh does not lose the rotation: the store gets the answer", () =>
    Effect.gen(function*() {
      const { mock, source, stored } = yield* setup()
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
      assert.strictEqual(Redacted.value((yield* stored).refreshToken), yield* mock.liveRefreshToken())
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
      // 90 minutes were left, so Strava's threshold is below that: the next try waits until 45 minutes are left.
      yield* TestClock.adjust(hours(0.6)) // 54 minutes left
      assert.strictEqual(Redacted.value(yield* source.get), Redacted.value(tokens.accessToken))
      assert.strictEqual((yield* refreshes).length, 1)
      yield* TestClock.adjust(hours(0.2)) // 42 minutes left
      const fresh = yield* source.get
      assert.notStrictEqual(Redacted.value(fresh), Redacted.value(tokens.accessToken))
      assert.strictEqual((yield* refreshes).length, 2)
      assert.strictEqual((yield* refreshes)[1]!.outcome, "refreshed")
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
      yield* TestClock.adjust("1300 millis") // the first backoff: 1 s ± 20 %
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
      const source = yield* TokenSource.makeRefreshing().pipe(Effect.provide(GrantStore.layerMemory()))
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
