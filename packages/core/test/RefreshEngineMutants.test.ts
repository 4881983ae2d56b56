// The refresh engine's exact behaviour, through a scripted executor (the scheduler) and a scripted Strava (the
// locked procedure): the states and their fields, the schedule's arithmetic with a fixed jitter, the learned
// one-hour rule, the floor, the backoff, the write retries, and what the log says. Written for the mutants the
// mutation run left alive (docs/RELIABILITY.md); each test asserts documented behaviour.
import * as Crypto from "node:crypto"

import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as HashMap from "effect/HashMap"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"

import * as GrantStore from "../src/GrantStore.js"
import * as RefreshEngine from "../src/RefreshEngine.js"
import * as StravaError from "../src/StravaError.js"
import { StravaOAuth, type StravaOAuthShape } from "../src/StravaOAuth.js"
import { TokenSet } from "../src/Token.js"

const SECOND = 1000
const MINUTE = 60 * SECOND
const T0 = 1_767_225_600_000 // 2026-01-01T00:00:00Z, the TestClock's start in every test here
const k = "athlete-7"

const set = (n: number, expiresAtMillis: number) =>
  new TokenSet({
    tokenType: "Bearer",
    accessToken: Redacted.make(`access-${n}`),
    refreshToken: Redacted.make(`refresh-${n}`),
    expiresAt: Math.round(expiresAtMillis / 1000),
    scopes: ["read"]
  })

interface Logged {
  readonly level: string
  readonly message: string
  readonly annotations: Record<string, unknown>
}

/** Every log line the effect writes, with its annotations. */
const capturing = (logs: Array<Logged>) =>
  Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ annotations, logLevel, message }) =>
      void logs.push({
        level: logLevel.label,
        message: Array.isArray(message) ? message.join(" ") : String(message),
        annotations: Object.fromEntries(HashMap.toEntries(annotations))
      })
    )
  )

/**
 * A test's world: the clock at T0, the jitter fixed at `r` (so each schedule is one number), the log captured,
 * a memory store, and an engine whose executor runs `script` (replaceable) and records each call.
 */
const world = (
  initial: TokenSet | ReadonlyMap<string, TokenSet> | undefined,
  options: { readonly margin?: Duration.DurationInput; readonly floor?: Duration.DurationInput } = {}
) =>
  Effect.gen(function*() {
    yield* TestClock.setTime(T0)
    const inner = yield* GrantStore.makeMemory(
      initial === undefined ? new Map() : initial instanceof TokenSet ? new Map([[k, initial]]) : initial
    )
    const calls: Array<RefreshEngine.RefreshOptions> = []
    const control: { script: RefreshEngine.Executor; readError: string | undefined; reads: number } = {
      script: () => Effect.die("no answer scripted"),
      readError: undefined, // when set, the store cannot be read, with this detail
      reads: 0
    }
    const store: GrantStore.GrantStoreShape = {
      ...inner,
      get: (key) =>
        Effect.suspend(() => {
          control.reads += 1
          return control.readError === undefined
            ? inner.get(key)
            : Effect.fail(
              new GrantStore.GrantStoreError({ key, reason: "Io", location: "test", detail: control.readError })
            )
        })
    }
    const engine = yield* RefreshEngine.make({
      ...options,
      execute: (key, refreshOptions) =>
        Effect.suspend(() => {
          calls.push(refreshOptions)
          return control.script(key, refreshOptions)
        })
    }).pipe(Effect.provideService(GrantStore.GrantStore, store))
    return { engine, store, calls, control }
  })

const now = TestClock.currentTimeMillis
const iso = (millis: number) => new Date(millis).toISOString()
const refreshed = (tokens: TokenSet, previous: TokenSet) => RefreshEngine.Outcome.Refreshed({ tokens, previous })
const answer = (outcome: RefreshEngine.Outcome): RefreshEngine.Executor => () => Effect.succeed(outcome)
const failWith = (error: RefreshEngine.RefreshError): RefreshEngine.Executor => () => Effect.fail(error)

// (made anew in each test: an error value that has failed one fiber is not reused in another test)
const makeServerError = () => new StravaError.ServerError({ status: 503 })
const makeInvalidGrant = () =>
  new StravaError.InvalidGrant({
    grant: "refresh_token",
    status: 400,
    resource: "RefreshToken",
    field: "refresh_token",
    code: "invalid"
  })
const rateLimited = (retryAt: number) =>
  new StravaError.RateLimited({
    status: 429,
    limit: Option.none(),
    usage: Option.none(),
    readLimit: Option.none(),
    readUsage: Option.none(),
    retryAt
  })

/**
 * The same failure: its tag and message (a failure that crossed a span is a proxy of the value, so not `===`).
 */
const assertSameError = (actual: { readonly _tag: string; readonly message: string }, expected: typeof actual) =>
  assert.deepStrictEqual({ tag: actual._tag, message: actual.message }, {
    tag: expected._tag,
    message: expected.message
  })

const active = (engine: RefreshEngine.Engine) => {
  const state = engine.state(k)
  assert.strictEqual(state._tag, "Active")
  return state as Extract<RefreshEngine.GrantState, { _tag: "Active" }>
}
const retrying = (engine: RefreshEngine.Engine) => {
  const state = engine.state(k)
  assert.strictEqual(state._tag, "Retrying")
  return state as Extract<RefreshEngine.GrantState, { _tag: "Retrying" }>
}

const fixedJitter = Effect.withRandom(Random.fixed([0.5]))

describe("RefreshEngine scheduler, exactly: loading and the schedule", () => {
  it.effect("a grant not read yet is Empty; sync adopts the stored set, logs it, and schedules it at the margin less the jitter", () =>
    Effect.gen(function*() {
      const logs: Array<Logged> = []
      const tokens = set(1, T0 + 6 * 60 * MINUTE)
      const { engine } = yield* world(tokens)
      const before = engine.state(k)
      assert.deepStrictEqual(before, RefreshEngine.GrantState.Empty({ reason: "Not read yet." }))
      assert.deepStrictEqual(engine.keys(), [k])
      assert.isUndefined(engine.nextAttemptAt(k))
      yield* engine.sync(k).pipe(Effect.provide(capturing(logs)))
      const state = active(engine)
      assert.strictEqual(state.tokens, tokens)
      assert.isUndefined(state.lastRefreshAt)
      // 45 minutes before expiry, less half (the fixed jitter) of 30 s
      const at = tokens.expiresAt * 1000 - 45 * MINUTE - 15 * SECOND
      assert.strictEqual(state.nextRefreshAt, at)
      assert.strictEqual(engine.nextAttemptAt(k), at)
      assert.deepStrictEqual(logs, [{
        level: "INFO",
        message: "grant loaded",
        annotations: { grant: k, expires_at: iso(tokens.expiresAt * 1000), next_refresh_at: iso(at) }
      }])
    }).pipe(fixedJitter))

  it.effect("the jitter's width is 30 s, or a tenth of a margin shorter than 5 minutes", () =>
    Effect.gen(function*() {
      const tokens = set(1, T0 + 6 * 60 * MINUTE)
      const ten = yield* world(tokens, { margin: "10 minutes" })
      yield* ten.engine.sync(k)
      assert.strictEqual(active(ten.engine).nextRefreshAt, tokens.expiresAt * 1000 - 10 * MINUTE - 15 * SECOND)
      const two = yield* world(tokens, { margin: "2 minutes" })
      yield* two.engine.sync(k)
      assert.strictEqual(active(two.engine).nextRefreshAt, tokens.expiresAt * 1000 - 2 * MINUTE - 6 * SECOND)
    }).pipe(fixedJitter))

  it.effect("refresh without force asks nothing until the margin plus the jitter's width is left, then asks once", () =>
    Effect.gen(function*() {
      const tokens = set(1, T0 + 6 * 60 * MINUTE)
      const { calls, control, engine } = yield* world(tokens)
      yield* engine.sync(k)
      const due = tokens.expiresAt * 1000 - 45 * MINUTE - 30 * SECOND
      yield* TestClock.setTime(due - 1)
      const early = yield* engine.refresh(k)
      assert.deepStrictEqual({ outcome: early.outcome, same: early.tokens === tokens }, {
        outcome: "current",
        same: true
      })
      assert.strictEqual(calls.length, 0)
      assert.strictEqual(active(engine).nextRefreshAt, tokens.expiresAt * 1000 - 45 * MINUTE - 15 * SECOND)
      yield* TestClock.setTime(due)
      const fresh = set(2, due + 6 * 60 * MINUTE)
      control.script = answer(refreshed(fresh, tokens))
      assert.strictEqual((yield* engine.refresh(k)).outcome, "refreshed")
      assert.strictEqual(calls.length, 1)
    }).pipe(fixedJitter))

  it.effect("a refresh in flight: Refreshing with its fields; the executor is told force, the margin and the set seen; a second caller joins it", () =>
    Effect.gen(function*() {
      const tokens = set(1, T0 + 30 * MINUTE)
      const fresh = set(2, T0 + 6 * 60 * MINUTE)
      const { calls, control, engine, store } = yield* world(tokens, { margin: "45 minutes" })
      const entered = yield* Deferred.make<void>()
      const gate = yield* Deferred.make<void>()
      control.script = () =>
        Deferred.succeed(entered, undefined).pipe(
          Effect.zipRight(Deferred.await(gate)),
          Effect.as(refreshed(fresh, tokens))
        )
      yield* engine.sync(k)
      const first = yield* Effect.fork(engine.refresh(k))
      yield* Deferred.await(entered)
      assert.deepStrictEqual(
        engine.state(k),
        RefreshEngine.GrantState.Refreshing({ tokens, since: T0, failures: 0, lastRefreshAt: undefined })
      )
      assert.deepStrictEqual(calls, [{ force: true, margin: 45 * MINUTE, seen: tokens }])
      // sync while in flight reads nothing (not even a set another process stored): the refresh settles the state
      yield* store.put(k, set(9, T0 + 6 * 60 * MINUTE))
      const synced = yield* engine.sync(k)
      assert.strictEqual(synced._tag, "Refreshing")
      assert.strictEqual(engine.state(k)._tag, "Refreshing")
      const second = yield* Effect.fork(engine.refresh(k, { force: true }))
      yield* TestClock.adjust(5 * SECOND)
      yield* Deferred.succeed(gate, undefined)
      const [a, b] = [yield* Fiber.join(first), yield* Fiber.join(second)]
      assert.strictEqual(calls.length, 1)
      assert.deepStrictEqual(a, { tokens: fresh, outcome: "refreshed" })
      assert.deepStrictEqual(b, a)
      const state = active(engine)
      assert.strictEqual(state.lastRefreshAt, T0 + 5 * SECOND) // when the answer came
      assert.strictEqual(RefreshEngine.lastRefreshOf(state), T0 + 5 * SECOND)
    }).pipe(fixedJitter))
})

describe("RefreshEngine scheduler, exactly: after a new token", () => {
  it.effect("Active with the new set, refreshed now, next at the margin before its expiry; the log says refreshed and rotated", () =>
    Effect.gen(function*() {
      const logs: Array<Logged> = []
      const tokens = set(1, T0 + 30 * MINUTE)
      const fresh = set(2, T0 + 6 * 60 * MINUTE)
      const { control, engine } = yield* world(tokens)
      yield* engine.sync(k)
      control.script = answer(refreshed(fresh, tokens))
      const result = yield* engine.refresh(k).pipe(Effect.provide(capturing(logs)))
      assert.deepStrictEqual(result, { tokens: fresh, outcome: "refreshed" })
      const at = fresh.expiresAt * 1000 - 45 * MINUTE - 15 * SECOND
      assert.deepStrictEqual(
        engine.state(k),
        RefreshEngine.GrantState.Active({ tokens: fresh, nextRefreshAt: at, lastRefreshAt: T0 })
      )
      assert.deepStrictEqual(logs, [{
        level: "INFO",
        message: "refreshed",
        annotations: { grant: k, expires_at: iso(fresh.expiresAt * 1000), next_refresh_at: iso(at), rotated: true }
      }])
    }).pipe(fixedJitter))

  it.effect("a new token that is short-lived is refreshed again after half of what it has left, at least 1 s, at most the floor", () =>
    Effect.gen(function*() {
      for (
        const [left, wait] of [[20 * SECOND, 10 * SECOND], [1 * SECOND, 1 * SECOND], [
          10 * MINUTE,
          30 * SECOND
        ]] as const
      ) {
        const tokens = set(1, T0 + 30 * MINUTE)
        const { control, engine } = yield* world(tokens)
        yield* engine.sync(k)
        control.script = answer(refreshed(set(2, T0 + left), tokens))
        yield* engine.refresh(k)
        assert.strictEqual(active(engine).nextRefreshAt, T0 + wait, `${left} ms left`)
      }
    }).pipe(fixedJitter))

  it.effect("a set stored by someone else meanwhile (Current) is adopted, with its new-token schedule, and is not a refresh", () =>
    Effect.gen(function*() {
      const tokens = set(1, T0 + 30 * MINUTE)
      const theirs = set(2, T0 + 20 * SECOND)
      const { control, engine } = yield* world(tokens)
      yield* engine.sync(k)
      control.script = answer(RefreshEngine.Outcome.Current({ tokens: theirs }))
      assert.deepStrictEqual(yield* engine.refresh(k), { tokens: theirs, outcome: "current" })
      const state = active(engine)
      assert.strictEqual(state.tokens, theirs)
      assert.strictEqual(state.nextRefreshAt, T0 + 10 * SECOND)
      assert.isUndefined(state.lastRefreshAt)
    }).pipe(fixedJitter))
})

describe("RefreshEngine scheduler, exactly: the learned one-hour rule and the floor", () => {
  it.effect("the same token back at N left: the next attempt waits until half of N is left (less the jitter), and learns again", () =>
    Effect.gen(function*() {
      const logs: Array<Logged> = []
      // a margin above Strava's threshold: due at once with 50 minutes left, and Strava answers with the same token
      const tokens = set(1, T0 + 50 * MINUTE)
      const { control, engine } = yield* world(tokens, { margin: "60 minutes" })
      yield* engine.sync(k)
      control.script = answer(refreshed(tokens, tokens))
      const first = yield* engine.refresh(k).pipe(Effect.provide(capturing(logs)))
      assert.deepStrictEqual(first, { tokens, outcome: "same" })
      const expiry = tokens.expiresAt * 1000
      // half of 50 minutes, less half of 30 s
      assert.strictEqual(active(engine).nextRefreshAt, expiry - 25 * MINUTE - 15 * SECOND)
      assert.strictEqual(active(engine).lastRefreshAt, T0)
      assert.deepStrictEqual(logs, [{
        level: "INFO",
        message: "refreshed; Strava returned the same token",
        annotations: {
          grant: k,
          expires_at: iso(expiry),
          next_refresh_at: iso(expiry - 25 * MINUTE - 15 * SECOND),
          rotated: false
        }
      }])
      // at that time, the same again: with 25 m 15 s left it now waits until half of that is left
      yield* TestClock.setTime(expiry - 25 * MINUTE - 15 * SECOND)
      assert.strictEqual((yield* engine.refresh(k)).outcome, "same")
      const left = 25 * MINUTE + 15 * SECOND
      assert.strictEqual(active(engine).nextRefreshAt, expiry - left / 2 - 15 * SECOND)
      // the token is not due before then: not asked
      yield* TestClock.setTime(expiry - left / 2 - 31 * SECOND)
      assert.strictEqual((yield* engine.refresh(k)).outcome, "current")
      assert.strictEqual(logs.filter((l) => l.level === "WARN").length, 0)
    }).pipe(fixedJitter))

  it.effect("the same token although it has expired here (a fast clock): a warning, and attempts the floor apart, doubling to 15 minutes", () =>
    Effect.gen(function*() {
      const logs: Array<Logged> = []
      const tokens = set(1, T0 - 10 * MINUTE) // expired ten minutes ago by this clock; Strava holds it valid
      const { control, engine } = yield* world(tokens)
      yield* engine.sync(k)
      control.script = answer(refreshed(tokens, tokens))
      const waits: Array<number> = []
      for (let i = 0; i < 8; i++) {
        const at = yield* now
        assert.strictEqual((yield* engine.refresh(k).pipe(Effect.provide(capturing(logs)))).outcome, "same")
        waits.push(active(engine).nextRefreshAt - at)
        // meanwhile an app is served the token Strava holds valid, without asking again
        assert.strictEqual(yield* engine.token(k), tokens)
        yield* TestClock.setTime(active(engine).nextRefreshAt)
      }
      assert.deepStrictEqual(waits, [30, 60, 120, 240, 480, 900, 900, 900].map((s) => s * SECOND))
      const warnings = logs.filter((l) => l.level === "WARN")
      assert.strictEqual(warnings.length, 8)
      assert.deepStrictEqual(warnings[0], {
        level: "WARN",
        message: "Strava returned the same token although it expires by this machine's clock: the clock is probably " +
          "fast (check NTP); refreshing less often until Strava mints",
        annotations: { grant: k, expires_at: iso(tokens.expiresAt * 1000) }
      })
    }).pipe(fixedJitter))

  it.effect("the clock warning comes at the floor or less left, not above it; a new token ends the doubling", () =>
    Effect.gen(function*() {
      for (const [left, warned] of [[30 * SECOND, true], [31 * SECOND, false]] as const) {
        const logs: Array<Logged> = []
        const tokens = set(1, T0 + left)
        const { control, engine } = yield* world(tokens)
        yield* engine.sync(k)
        control.script = answer(refreshed(tokens, tokens))
        yield* engine.refresh(k).pipe(Effect.provide(capturing(logs)))
        assert.strictEqual(logs.some((l) => l.level === "WARN"), warned, `${left} ms left`)
      }
      const tokens = set(1, T0 - MINUTE)
      const { control, engine } = yield* world(tokens)
      yield* engine.sync(k)
      control.script = answer(refreshed(tokens, tokens))
      yield* engine.refresh(k)
      yield* TestClock.setTime(active(engine).nextRefreshAt)
      yield* engine.refresh(k) // the second in a row: 60 s
      assert.strictEqual(active(engine).nextRefreshAt - (yield* now), 60 * SECOND)
      yield* TestClock.setTime(active(engine).nextRefreshAt)
      const fresh = set(2, (yield* now) + 6 * 60 * MINUTE)
      control.script = answer(refreshed(fresh, tokens))
      yield* engine.refresh(k)
      // the learned margin (half of two floors) holds for the new token too: 30 s and half of a tenth of it
      assert.strictEqual(active(engine).nextRefreshAt, fresh.expiresAt * 1000 - 30 * SECOND - 1500)
      // Strava minted; its threshold (below the 60 s learned floor of two floors) keeps the margin at 30 s
      control.script = answer(refreshed(fresh, fresh))
      yield* TestClock.setTime(fresh.expiresAt * 1000 - 31 * SECOND)
      const at = yield* now
      yield* engine.refresh(k)
      assert.strictEqual(active(engine).nextRefreshAt - at, 30 * SECOND) // the first same answer again: one floor
    }).pipe(fixedJitter))

  it.effect("a longer floor spaces the same-token attempts by that floor", () =>
    Effect.gen(function*() {
      const tokens = set(1, T0 - 10 * MINUTE)
      const { control, engine } = yield* world(tokens, { floor: "2 minutes" })
      yield* engine.sync(k)
      control.script = answer(refreshed(tokens, tokens))
      yield* engine.refresh(k)
      assert.strictEqual(active(engine).nextRefreshAt - T0, 2 * MINUTE)
    }).pipe(fixedJitter))
})

describe("RefreshEngine scheduler, exactly: failures", () => {
  it.effect("a transient failure: Retrying with its fields, the backoff from 1 s doubling, the log; a success clears it", () =>
    Effect.gen(function*() {
      const serverError = makeServerError()
      const logs: Array<Logged> = []
      const tokens = set(1, T0 + 30 * MINUTE)
      const { control, engine } = yield* world(tokens)
      yield* engine.sync(k)
      control.script = failWith(serverError)
      const error = yield* Effect.flip(engine.refresh(k).pipe(Effect.provide(capturing(logs))))
      assertSameError(error, serverError)
      const state = retrying(engine)
      assert.strictEqual(state.tokens, tokens)
      assert.strictEqual(state.failures, 1)
      assertSameError(state.lastError, serverError)
      assert.isUndefined(state.lastRefreshAt)
      assert.isUndefined(state.unsaved)
      assert.isFalse(state.appRefused)
      assert.isAtLeast(state.nextAttemptAt - T0, 800)
      assert.isAtMost(state.nextAttemptAt - T0, 1200)
      assert.strictEqual(engine.nextAttemptAt(k), state.nextAttemptAt)
      assert.strictEqual(RefreshEngine.failuresOf(state), 1)
      assert.deepStrictEqual(logs, [{
        level: "WARN",
        message: "retrying",
        annotations: {
          grant: k,
          reason: "ServerError",
          error: serverError.message,
          attempt: 1,
          next_attempt_at: iso(state.nextAttemptAt),
          token_valid: true
        }
      }])
      // while it waits, an app gets the valid token and Strava is not asked
      assert.strictEqual(yield* engine.token(k), tokens)
      // the second failure waits about 2 s
      yield* TestClock.setTime(state.nextAttemptAt)
      yield* Effect.flip(engine.refresh(k))
      const again = retrying(engine)
      assert.strictEqual(again.failures, 2)
      assert.isAtLeast(again.nextAttemptAt - (yield* now), 1600)
      assert.isAtMost(again.nextAttemptAt - (yield* now), 2400)
      // a success: Active, no failures
      yield* TestClock.setTime(again.nextAttemptAt)
      control.script = answer(refreshed(set(2, T0 + 6 * 60 * MINUTE), tokens))
      yield* engine.refresh(k)
      assert.strictEqual(RefreshEngine.failuresOf(active(engine)), 0)
    }).pipe(fixedJitter))

  it.effect("rate limited: the next attempt waits for Strava's window when that is longer than the backoff", () =>
    Effect.gen(function*() {
      const tokens = set(1, T0 + 30 * MINUTE)
      const { control, engine } = yield* world(tokens)
      yield* engine.sync(k)
      control.script = failWith(rateLimited(T0 + 15 * MINUTE))
      yield* Effect.flip(engine.refresh(k))
      assert.strictEqual(retrying(engine).nextAttemptAt, T0 + 15 * MINUTE)
      // a window already over: the backoff
      yield* TestClock.setTime(T0 + 15 * MINUTE)
      control.script = failWith(rateLimited(T0))
      yield* Effect.flip(engine.refresh(k))
      const wait = retrying(engine).nextAttemptAt - (yield* now)
      assert.isAtLeast(wait, 1600)
      assert.isAtMost(wait, 2400)
    }).pipe(fixedJitter))

  it.effect("an expired token while retrying: TokenUnavailable naming the error and the next attempt, Strava not asked", () =>
    Effect.gen(function*() {
      const serverError = makeServerError()
      const tokens = set(1, T0 + 10 * SECOND)
      const { calls, control, engine } = yield* world(tokens)
      yield* engine.sync(k)
      control.script = failWith(serverError)
      yield* Effect.flip(engine.refresh(k))
      yield* TestClock.setTime(T0 + 10 * SECOND)
      yield* Effect.flip(engine.refresh(k)) // at expiry, failing again
      const next = retrying(engine).nextAttemptAt
      const error = yield* Effect.flip(engine.token(k))
      assert.strictEqual(error._tag, "TokenUnavailable")
      assert.strictEqual(
        error._tag === "TokenUnavailable" ? error.reason : "",
        `${serverError.message} Next attempt at ${iso(next)}.`
      )
      assert.strictEqual(calls.length, 2)
      // at the next attempt, token() asks again; a transient failure with no valid token is that failure
      yield* TestClock.setTime(next)
      assertSameError(yield* Effect.flip(engine.token(k)), serverError)
      assert.strictEqual(calls.length, 3)
    }).pipe(fixedJitter))

  it.effect("token() asks at the next attempt; a transient failure serves the valid token, a refused grant fails", () =>
    Effect.gen(function*() {
      const serverError = makeServerError()
      const invalidGrant = makeInvalidGrant()
      const tokens = set(1, T0 + 30 * MINUTE)
      const { calls, control, engine } = yield* world(tokens)
      control.script = failWith(serverError)
      assert.strictEqual(yield* engine.token(k), tokens) // due: asked, failed, still valid
      assert.strictEqual(calls.length, 1)
      yield* TestClock.setTime(engine.nextAttemptAt(k)!)
      control.script = failWith(invalidGrant)
      assertSameError(yield* Effect.flip(engine.token(k)), invalidGrant)
      assert.strictEqual(calls.length, 2)
    }).pipe(fixedJitter))

  it.effect("a refused grant: NeedsLogin with the reason and the count; the log says so; nothing more is asked", () =>
    Effect.gen(function*() {
      const serverError = makeServerError()
      const invalidGrant = makeInvalidGrant()
      const logs: Array<Logged> = []
      const tokens = set(1, T0 + 30 * MINUTE)
      const { calls, control, engine } = yield* world(tokens)
      yield* engine.sync(k)
      control.script = failWith(serverError)
      yield* Effect.flip(engine.refresh(k))
      yield* TestClock.setTime(engine.nextAttemptAt(k)!)
      control.script = failWith(invalidGrant)
      yield* Effect.flip(engine.refresh(k).pipe(Effect.provide(capturing(logs))))
      assert.deepStrictEqual(
        engine.state(k),
        RefreshEngine.GrantState.NeedsLogin({
          tokens,
          reason: invalidGrant.message,
          failures: 2,
          lastRefreshAt: undefined
        })
      )
      assert.isUndefined(engine.nextAttemptAt(k))
      assert.strictEqual(RefreshEngine.failuresOf(engine.state(k)), 2)
      assert.strictEqual(RefreshEngine.tokensOf(engine.state(k)), tokens)
      assert.isUndefined(RefreshEngine.lastRefreshOf(engine.state(k)))
      assert.deepStrictEqual(logs, [{
        level: "ERROR",
        message: "needs login",
        annotations: { grant: k, reason: "InvalidGrant", error: invalidGrant.message }
      }])
      const attempts: ReadonlyArray<
        Effect.Effect<unknown, RefreshEngine.RefreshError | RefreshEngine.TokenUnavailable>
      > = [engine.refresh(k), engine.refresh(k, { force: true }), engine.token(k)]
      for (const attempt of attempts) {
        const error = yield* Effect.flip(attempt)
        assert.strictEqual(error._tag, "LoginRequired")
        assert.strictEqual(error._tag === "LoginRequired" ? error.reason : "", invalidGrant.message)
      }
      assert.strictEqual(calls.length, 2)
    }).pipe(fixedJitter))

  it.effect("an app refusal: Retrying appRefused, its own backoff, the log; resetApp lifts only app refusals", () =>
    Effect.gen(function*() {
      const serverError = makeServerError()
      const logs: Array<Logged> = []
      const refusal = new StravaError.InvalidClient({ status: 401, field: "client_secret", code: "invalid" })
      const tokens = set(1, T0 + 30 * MINUTE)
      const { control, engine } = yield* world(tokens)
      yield* engine.sync(k)
      control.script = failWith(refusal)
      yield* Effect.flip(engine.refresh(k).pipe(Effect.provide(capturing(logs))))
      const state = retrying(engine)
      assert.isTrue(state.appRefused)
      assert.isAtLeast(state.nextAttemptAt - T0, 800)
      assert.isAtMost(state.nextAttemptAt - T0, 1200)
      assert.strictEqual(logs[0]?.message, "the app is refused; retrying")
      assert.strictEqual(logs[0]?.annotations["reason"], "InvalidClient")
      // the app's second refusal waits about 2 s: the app's count, not the grant's
      yield* TestClock.setTime(state.nextAttemptAt)
      yield* Effect.flip(engine.refresh(k))
      const second = retrying(engine)
      assert.isAtLeast(second.nextAttemptAt - (yield* now), 1600)
      assert.isAtMost(second.nextAttemptAt - (yield* now), 2400)
      yield* engine.resetApp
      assert.strictEqual(engine.nextAttemptAt(k), yield* now)
      // a transient failure is not lifted by resetApp
      yield* TestClock.adjust(SECOND)
      control.script = failWith(serverError)
      yield* Effect.flip(engine.refresh(k))
      const transient = retrying(engine).nextAttemptAt
      assert.isAbove(transient, yield* now)
      yield* engine.resetApp
      assert.strictEqual(engine.nextAttemptAt(k), transient)
    }).pipe(fixedJitter))

  it.effect("a defect in the executor is a transient RefreshAborted saying what happened", () =>
    Effect.gen(function*() {
      const tokens = set(1, T0 + 30 * MINUTE)
      const { control, engine } = yield* world(tokens)
      yield* engine.sync(k)
      control.script = () => Effect.die(new Error("boom"))
      const error = yield* Effect.flip(engine.refresh(k))
      assert.strictEqual(error._tag, "RefreshAborted")
      assert.strictEqual(error.message, "the refresh failed unexpectedly: Error: boom")
      assert.strictEqual(retrying(engine).lastError, error)
    }).pipe(fixedJitter))
})

describe("RefreshEngine scheduler, exactly: sync", () => {
  it.effect("a store that cannot be read: Retrying, counted once per distinct error; reading again: back to Active", () =>
    Effect.gen(function*() {
      const tokens = set(1, T0 + 6 * 60 * MINUTE)
      const inner = yield* GrantStore.makeMemory(new Map([[k, tokens]]))
      const broken = { detail: undefined as string | undefined }
      const store: GrantStore.GrantStoreShape = {
        ...inner,
        get: (key) =>
          broken.detail === undefined
            ? inner.get(key)
            : Effect.fail(
              new GrantStore.GrantStoreError({ key, reason: "Io", location: "test", detail: broken.detail })
            )
      }
      yield* TestClock.setTime(T0)
      const engine = yield* RefreshEngine.make({ execute: () => Effect.die("not asked") }).pipe(
        Effect.provideService(GrantStore.GrantStore, store)
      )
      yield* engine.sync(k)
      broken.detail = "disk says no"
      yield* engine.sync(k)
      yield* engine.sync(k)
      assert.strictEqual(retrying(engine).failures, 1)
      assert.strictEqual(retrying(engine).tokens, tokens)
      broken.detail = "disk says no again"
      yield* engine.sync(k)
      assert.strictEqual(retrying(engine).failures, 2)
      broken.detail = undefined
      yield* engine.sync(k)
      assert.strictEqual(active(engine).tokens, tokens)
      assert.strictEqual(active(engine).nextRefreshAt, tokens.expiresAt * 1000 - 45 * MINUTE - 15 * SECOND)
    }).pipe(fixedJitter))

  it.effect("a grant removed from the store: Empty with the reason and a warning; never held: no warning", () =>
    Effect.gen(function*() {
      const logs: Array<Logged> = []
      const tokens = set(1, T0 + 6 * 60 * MINUTE)
      const { engine, store } = yield* world(tokens)
      yield* engine.sync(k)
      yield* store.remove(k)
      yield* engine.sync(k).pipe(Effect.provide(capturing(logs)))
      const reason = `No Strava grant is stored for "${k}".`
      assert.deepStrictEqual(engine.state(k), RefreshEngine.GrantState.Empty({ reason }))
      assert.deepStrictEqual(logs, [{
        level: "WARN",
        message: "needs login",
        annotations: { grant: k, reason: "no grant stored" }
      }])
      yield* engine.sync(k).pipe(Effect.provide(capturing(logs)))
      assert.strictEqual(logs.length, 1)
      const error = yield* Effect.flip(engine.refresh(k))
      assert.strictEqual(error._tag === "LoginRequired" ? error.reason : "", reason)
      const fresh = yield* world(undefined)
      yield* fresh.engine.sync(k).pipe(Effect.provide(capturing(logs)))
      assert.strictEqual(fresh.engine.state(k)._tag, "Empty")
      assert.strictEqual(logs.length, 1)
      // a login: adopted on the next sync
      yield* store.put(k, tokens)
      yield* engine.sync(k)
      assert.strictEqual(active(engine).tokens, tokens)
    }).pipe(fixedJitter))

  it.effect("a failed refresh is not undone by sync when the store holds the same set", () =>
    Effect.gen(function*() {
      const serverError = makeServerError()
      const tokens = set(1, T0 + 30 * MINUTE)
      const { control, engine } = yield* world(tokens)
      yield* engine.sync(k)
      control.script = failWith(serverError)
      yield* Effect.flip(engine.refresh(k))
      const before = retrying(engine)
      yield* engine.sync(k)
      assert.strictEqual(engine.state(k), before)
    }).pipe(fixedJitter))

  it.effect("an unsaved set is kept across syncs of the set it replaces; a new login supersedes it, with a warning", () =>
    Effect.gen(function*() {
      const logs: Array<Logged> = []
      const tokens = set(1, T0 + 30 * MINUTE)
      const fresh = set(2, T0 + 6 * 60 * MINUTE)
      const { control, engine, store } = yield* world(tokens)
      yield* engine.sync(k)
      const unsaved = new RefreshEngine.GrantUnsaved({
        key: k,
        tokens: fresh,
        previous: tokens,
        error: new GrantStore.GrantStoreError({ key: k, reason: "Io", location: "test", detail: "disk says no" })
      })
      control.script = failWith(unsaved)
      yield* Effect.flip(engine.refresh(k))
      assert.strictEqual(retrying(engine).unsaved?.tokens, fresh)
      // the store holds the set it replaces (its refresh token, even with another access token): still kept
      yield* engine.sync(k)
      assert.strictEqual(retrying(engine).unsaved?.tokens, fresh)
      yield* store.put(k, new TokenSet({ ...tokens, accessToken: Redacted.make("access-other") }))
      yield* engine.sync(k)
      assert.strictEqual(retrying(engine).unsaved?.tokens, fresh)
      assert.strictEqual(retrying(engine).unsaved?.previous, tokens)
      // the store holds a newer refresh token than the one the unsaved set replaces (a login)
      const login = set(3, T0 + 6 * 60 * MINUTE)
      yield* store.put(k, login)
      yield* engine.sync(k).pipe(Effect.provide(capturing(logs)))
      assert.strictEqual(active(engine).tokens, login)
      assert.deepStrictEqual(logs.map((l) => [l.level, l.message]), [
        ["WARN", "a new grant was stored; the unsaved refresh is superseded"],
        ["INFO", "grant loaded"]
      ])
      assert.strictEqual(logs[0]?.annotations["grant"], k)
    }).pipe(fixedJitter))
})

describe("RefreshEngine scheduler, exactly: asked from outside, and invalidate", () => {
  it.effect("coalesce: within the floor of the last attempt the current set, as coalesced; at the floor, or expired, asked", () =>
    Effect.gen(function*() {
      const tokens = set(1, T0 + 30 * MINUTE)
      const fresh = set(2, T0 + 6 * 60 * MINUTE)
      const { calls, control, engine } = yield* world(tokens)
      control.script = answer(refreshed(fresh, tokens))
      yield* engine.refresh(k)
      control.script = answer(refreshed(fresh, fresh))
      yield* TestClock.adjust(30 * SECOND - 1)
      assert.deepStrictEqual(yield* engine.refresh(k, { force: true, coalesce: true }), {
        tokens: fresh,
        outcome: "coalesced"
      })
      assert.strictEqual(calls.length, 1)
      // without coalesce, a forced refresh is asked
      assert.strictEqual((yield* engine.refresh(k, { force: true })).outcome, "same")
      assert.strictEqual(calls.length, 2)
      yield* TestClock.adjust(30 * SECOND)
      assert.strictEqual((yield* engine.refresh(k, { force: true, coalesce: true })).outcome, "same")
      assert.strictEqual(calls.length, 3)
      // an expired set is never coalesced
      const expired = set(4, T0)
      const late = yield* world(expired)
      late.control.script = answer(refreshed(expired, expired))
      yield* late.engine.refresh(k)
      yield* TestClock.adjust(SECOND)
      assert.strictEqual((yield* late.engine.refresh(k, { force: true, coalesce: true })).outcome, "same")
      assert.strictEqual(late.calls.length, 2)
    }).pipe(fixedJitter))

  it.effect("invalidate: another token than the rejected one is served as is; the current one is refreshed, once per floor", () =>
    Effect.gen(function*() {
      const tokens = set(1, T0 + 6 * 60 * MINUTE)
      const fresh = set(2, T0 + 12 * 60 * MINUTE)
      const { calls, control, engine } = yield* world(tokens)
      control.script = answer(refreshed(fresh, tokens))
      // not read yet: it reads first, then sees the rejected token is another one
      assert.strictEqual(yield* engine.invalidate(k, Redacted.make("access-0")), tokens)
      assert.strictEqual(calls.length, 0)
      assert.strictEqual(yield* engine.invalidate(k, tokens.accessToken), fresh)
      assert.strictEqual(calls.length, 1)
      control.script = answer(refreshed(fresh, fresh))
      yield* TestClock.adjust(30 * SECOND - 1)
      assert.strictEqual(yield* engine.invalidate(k, fresh.accessToken), fresh)
      assert.strictEqual(calls.length, 1)
      yield* TestClock.adjust(1)
      assert.strictEqual(yield* engine.invalidate(k, fresh.accessToken), fresh)
      assert.strictEqual(calls.length, 2)
    }).pipe(fixedJitter))
})

// ---------------------------------------------------------------------------------------------------------
// The locked procedure and the policy, against a scripted Strava
// ---------------------------------------------------------------------------------------------------------

/** A Strava whose refresh runs `answer` (replaceable) and counts the requests. */
const scriptedStrava = () => {
  const control = {
    requests: 0,
    answer: (tokens: TokenSet): Effect.Effect<TokenSet, StravaError.StravaError> => Effect.succeed(tokens)
  }
  const oauth = {
    refresh: (tokens: TokenSet) =>
      Effect.suspend(() => {
        control.requests += 1
        return control.answer(tokens)
      })
  } as unknown as StravaOAuthShape
  return { control, oauth }
}

/** A memory store that counts writes and can fail them. */
const countingStore = (initial: TokenSet | undefined) =>
  Effect.gen(function*() {
    const inner = yield* GrantStore.makeMemory(initial === undefined ? new Map() : new Map([[k, initial]]))
    const control = { puts: 0, failPuts: false, beforePut: Effect.void as Effect.Effect<void> }
    const store: GrantStore.GrantStoreShape = {
      ...inner,
      put: (key, tokens, options) =>
        Effect.suspend(() => {
          control.puts += 1
          return control.failPuts
            ? Effect.fail(
              new GrantStore.GrantStoreError({ key, reason: "Io", location: "test", detail: "disk says no" })
            )
            : Effect.zipRight(control.beforePut, inner.put(key, tokens, options))
        })
    }
    return { store, inner, control }
  })

const locked = (
  store: GrantStore.GrantStoreShape,
  oauth: StravaOAuthShape,
  options: RefreshEngine.RefreshOptions
) =>
  RefreshEngine.refreshOnce(k, options).pipe(
    Effect.provideService(GrantStore.GrantStore, store),
    Effect.provideService(StravaOAuth, oauth)
  )

describe("RefreshEngine.refreshOnce, exactly", () => {
  it.effect("no grant stored: LoginRequired naming the key, Strava not asked", () =>
    Effect.gen(function*() {
      const { control, oauth } = scriptedStrava()
      const { store } = yield* countingStore(undefined)
      const error = yield* Effect.flip(locked(store, oauth, { force: true }))
      assert.strictEqual(error._tag, "LoginRequired")
      assert.strictEqual(error._tag === "LoginRequired" ? error.reason : "", `No Strava grant is stored for "${k}".`)
      assert.strictEqual(control.requests, 0)
    }))

  it.effect("without force: Current while more than the margin (45 minutes unless told) is left, else refreshed", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T0)
      const { control, oauth } = scriptedStrava()
      const tokens = set(1, T0 + 45 * MINUTE + SECOND)
      const fresh = set(2, T0 + 6 * 60 * MINUTE)
      const { store } = yield* countingStore(tokens)
      control.answer = () => Effect.succeed(fresh)
      assert.deepStrictEqual(yield* locked(store, oauth, { force: false }), RefreshEngine.Outcome.Current({ tokens }))
      assert.strictEqual(control.requests, 0)
      const due = yield* locked(store, oauth, { force: false, margin: "46 minutes" })
      assert.deepStrictEqual(due, RefreshEngine.Outcome.Refreshed({ tokens: fresh, previous: tokens }))
      assert.strictEqual(control.requests, 1)
      yield* TestClock.setTime(fresh.expiresAt * 1000 - 45 * MINUTE)
      control.answer = () => Effect.succeed(set(3, T0 + 12 * 60 * MINUTE))
      assert.strictEqual((yield* locked(store, oauth, { force: false }))._tag, "Refreshed")
      assert.strictEqual(control.requests, 2)
    }))

  it.effect("the store holds another set than the one seen (either token differs, or its fingerprint): Current, not asked", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T0)
      const { control, oauth } = scriptedStrava()
      const tokens = set(1, T0 + 30 * MINUTE)
      const { store } = yield* countingStore(tokens)
      control.answer = () => Effect.succeed(set(2, T0 + 6 * 60 * MINUTE))
      const otherAccess = new TokenSet({ ...tokens, accessToken: Redacted.make("access-other") })
      const otherRefresh = new TokenSet({ ...tokens, refreshToken: Redacted.make("refresh-other") })
      for (const seen of [otherAccess, otherRefresh]) {
        assert.deepStrictEqual(
          yield* locked(store, oauth, { force: true, seen }),
          RefreshEngine.Outcome.Current({ tokens })
        )
      }
      const fingerprint = yield* RefreshEngine.fingerprint(otherAccess)
      assert.deepStrictEqual(
        yield* locked(store, oauth, { force: true, seenFingerprint: fingerprint }),
        RefreshEngine.Outcome.Current({ tokens })
      )
      assert.strictEqual(control.requests, 0)
      const same = yield* RefreshEngine.fingerprint(tokens)
      assert.strictEqual((yield* locked(store, oauth, { force: true, seenFingerprint: same }))._tag, "Refreshed")
      assert.strictEqual(control.requests, 1)
    }))

  it.effect("a new access token with the same refresh token is written; the same access token back is a Refreshed without a write", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T0)
      const { control, oauth } = scriptedStrava()
      const tokens = set(1, T0 + 30 * MINUTE)
      const counted = yield* countingStore(tokens)
      const newAccess = new TokenSet({
        ...tokens,
        accessToken: Redacted.make("access-new"),
        expiresAt: tokens.expiresAt + 3600
      })
      control.answer = () => Effect.succeed(newAccess)
      const outcome = yield* locked(counted.store, oauth, { force: true })
      assert.deepStrictEqual(outcome, RefreshEngine.Outcome.Refreshed({ tokens: newAccess, previous: tokens }))
      assert.strictEqual(counted.control.puts, 1)
      assert.strictEqual(Option.getOrThrow(yield* counted.inner.get(k)), newAccess)
      // Strava's one-hour rule: the same set back; nothing to write
      control.answer = (held) => Effect.succeed(new TokenSet({ ...held }))
      const same = yield* locked(counted.store, oauth, { force: true })
      assert.deepStrictEqual(same, RefreshEngine.Outcome.Refreshed({ tokens: newAccess, previous: newAccess }))
      assert.strictEqual(counted.control.puts, 1)
    }))

  it.effect("a failing write is tried five times over 3 s (200 ms doubling), then GrantUnsaved carries the answer", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T0)
      const { control, oauth } = scriptedStrava()
      const tokens = set(1, T0 + 30 * MINUTE)
      const fresh = set(2, T0 + 6 * 60 * MINUTE)
      const counted = yield* countingStore(tokens)
      counted.control.failPuts = true
      control.answer = () => Effect.succeed(fresh)
      const fiber = yield* Effect.fork(locked(counted.store, oauth, { force: true }))
      yield* TestClock.adjust(200 + 400 + 800 + 1600 - 1)
      assert.strictEqual(counted.control.puts, 4)
      assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
      yield* TestClock.adjust(1)
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.strictEqual(counted.control.puts, 5)
      assert.strictEqual(error._tag, "GrantUnsaved")
      if (error._tag === "GrantUnsaved") {
        assert.strictEqual(error.key, k)
        assert.strictEqual(error.tokens, fresh)
        assert.strictEqual(error.previous, tokens)
        assert.strictEqual(error.error.detail, "disk says no")
      }
      assert.strictEqual(control.requests, 1)
      // written later, under the lock, over the set it replaces
      counted.control.failPuts = false
      if (error._tag === "GrantUnsaved") {
        const written = yield* RefreshEngine.persistUnsaved(error).pipe(
          Effect.provideService(GrantStore.GrantStore, counted.store)
        )
        assert.deepStrictEqual(written, RefreshEngine.Outcome.Refreshed({ tokens: fresh, previous: tokens }))
      }
      assert.strictEqual(Option.getOrThrow(yield* counted.inner.get(k)), fresh)
    }))

  it.effect("a newer grant stored meanwhile (StaleGrant) is kept, without retrying the write, and the log says so", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T0)
      const logs: Array<Logged> = []
      const { control, oauth } = scriptedStrava()
      const tokens = set(1, T0 + 30 * MINUTE)
      const login = set(3, T0 + 6 * 60 * MINUTE)
      const counted = yield* countingStore(tokens)
      // a login lands between our read and our write
      counted.control.beforePut = Effect.orDie(counted.inner.put(k, login))
      control.answer = () => Effect.succeed(set(2, T0 + 6 * 60 * MINUTE))
      const outcome = yield* locked(counted.store, oauth, { force: true }).pipe(Effect.provide(capturing(logs)))
      assert.deepStrictEqual(outcome, RefreshEngine.Outcome.Current({ tokens: login }))
      assert.strictEqual(counted.control.puts, 1)
      assert.deepStrictEqual(logs, [{
        level: "WARN",
        message: "a newer grant was stored meanwhile; kept it",
        annotations: { grant: k }
      }])
    }))

  it.effect("a refused refresh token still in the store: the refusal; rotated in the store meanwhile: Current", () =>
    Effect.gen(function*() {
      const invalidGrant = makeInvalidGrant()
      yield* TestClock.setTime(T0)
      const { control, oauth } = scriptedStrava()
      const tokens = set(1, T0 + 30 * MINUTE)
      const counted = yield* countingStore(tokens)
      control.answer = () => Effect.fail(invalidGrant)
      assertSameError(yield* Effect.flip(locked(counted.store, oauth, { force: true })), invalidGrant)
      const rotated = set(2, T0 + 6 * 60 * MINUTE)
      control.answer = () => Effect.zipRight(Effect.orDie(counted.inner.put(k, rotated)), Effect.fail(invalidGrant))
      assert.deepStrictEqual(
        yield* locked(counted.store, oauth, { force: true }),
        RefreshEngine.Outcome.Current({ tokens: rotated })
      )
    }))
})

describe("RefreshEngine policy, exactly", () => {
  it.effect("fingerprint: the SHA-256, in hex, of the access token, the refresh token and the expiry, one per line", () =>
    Effect.gen(function*() {
      const tokens = set(1, 1_800_000_000_000)
      const expected = Crypto.createHash("sha256").update("access-1\nrefresh-1\n1800000000").digest("hex")
      assert.strictEqual(yield* RefreshEngine.fingerprint(tokens), expected)
    }))

  it.effect("backoffMillis counts at least one failure: none or fewer waits as one does, about 1 s", () =>
    Effect.gen(function*() {
      for (const failures of [0, -3]) {
        const wait = yield* RefreshEngine.backoffMillis(failures)
        assert.isAtLeast(wait, 800)
        assert.isAtMost(wait, 1200)
      }
    }))

  it.effect("shielded: an interrupted caller waits for the effect to finish; the effect's own timeout still works", () =>
    Effect.gen(function*() {
      const done: Array<string> = []
      const gate = yield* Deferred.make<void>()
      const started = yield* Deferred.make<void>()
      const caller = yield* Effect.fork(
        RefreshEngine.shielded(
          Deferred.succeed(started, undefined).pipe(
            Effect.zipRight(Deferred.await(gate)),
            Effect.zipRight(Effect.sync(() => done.push("written")))
          )
        )
      )
      yield* Deferred.await(started)
      const interrupting = yield* Effect.fork(Fiber.interrupt(caller))
      yield* TestClock.adjust(SECOND)
      assert.isTrue(Option.isNone(yield* Fiber.poll(interrupting)), "the interruption did not wait")
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(interrupting)
      assert.deepStrictEqual(done, ["written"])
      // a timeout inside the shielded effect still interrupts what it times
      const timed = yield* Effect.fork(RefreshEngine.shielded(Effect.never.pipe(Effect.timeout("1 second"))))
      yield* TestClock.adjust(SECOND)
      const result = yield* Effect.either(Fiber.join(timed))
      assert.strictEqual(result._tag === "Left" && result.left._tag, "TimeoutException")
    }))
})

describe("RefreshEngine scheduler, exactly: edges", () => {
  it.effect("with a short margin the token is due at the margin plus a tenth of it", () =>
    Effect.gen(function*() {
      const tokens = set(1, T0 + 6 * 60 * MINUTE)
      const { calls, control, engine } = yield* world(tokens, { margin: "2 minutes" })
      yield* engine.sync(k)
      control.script = answer(refreshed(set(2, T0 + 12 * 60 * MINUTE), tokens))
      yield* TestClock.setTime(tokens.expiresAt * 1000 - 2 * MINUTE - 12 * SECOND - 1)
      assert.strictEqual((yield* engine.refresh(k)).outcome, "current")
      assert.strictEqual(calls.length, 0)
      yield* TestClock.adjust(1)
      assert.strictEqual((yield* engine.refresh(k)).outcome, "refreshed")
      assert.strictEqual(calls.length, 1)
    }).pipe(fixedJitter))

  it.effect("the time left at a same-token answer is counted from when the attempt began, not when it answered", () =>
    Effect.gen(function*() {
      const tokens = set(1, T0 + 50 * MINUTE)
      const { control, engine } = yield* world(tokens, { margin: "60 minutes" })
      yield* engine.sync(k)
      control.script = () => Effect.as(Effect.sleep("10 minutes"), refreshed(tokens, tokens))
      const fiber = yield* Effect.fork(engine.refresh(k))
      yield* TestClock.adjust(10 * MINUTE)
      assert.strictEqual((yield* Fiber.join(fiber)).outcome, "same")
      // 50 minutes were left when it asked: half of that, less half of 30 s
      assert.strictEqual(active(engine).nextRefreshAt, tokens.expiresAt * 1000 - 25 * MINUTE - 15 * SECOND)
    }).pipe(fixedJitter))

  it.effect("a new token that has already expired here is not served: the next call asks again", () =>
    Effect.gen(function*() {
      const tokens = set(1, T0 + 30 * MINUTE)
      const expired = set(2, T0 - MINUTE)
      const fresh = set(3, T0 + 6 * 60 * MINUTE)
      const { calls, control, engine } = yield* world(tokens)
      yield* engine.sync(k)
      control.script = answer(refreshed(expired, tokens))
      yield* engine.refresh(k)
      control.script = answer(refreshed(fresh, expired))
      assert.strictEqual(yield* engine.token(k), fresh)
      assert.strictEqual(calls.length, 2)
    }).pipe(fixedJitter))

  it.effect("a success ends an app-wide refusal for every grant of the app", () =>
    Effect.gen(function*() {
      const a = set(1, T0 + 30 * MINUTE)
      const b = set(2, T0 + 30 * MINUTE)
      const { control, engine } = yield* world(new Map([["a", a], ["b", b]]))
      yield* engine.sync("b")
      control.script = failWith(new StravaError.AppInactive({ status: 403 }))
      yield* Effect.flip(engine.refresh("a"))
      const until = engine.nextAttemptAt("a")!
      assert.isAbove(until, T0)
      assert.strictEqual(engine.nextAttemptAt("b"), until) // b is due now, but waits for the app
      // a forced refresh of a (asked from the command line) succeeds: the app works again
      control.script = answer(refreshed(set(3, T0 + 6 * 60 * MINUTE), a))
      yield* engine.refresh("a", { force: true })
      const state = engine.state("b")
      assert.strictEqual(engine.nextAttemptAt("b"), state._tag === "Active" ? state.nextRefreshAt : -1)
      assert.isBelow(engine.nextAttemptAt("b")!, until)
    }).pipe(fixedJitter))

  it.effect("a request from outside at the very end of an app-wide refusal is asked", () =>
    Effect.gen(function*() {
      const a = set(1, T0 + 30 * MINUTE)
      const b = set(2, T0 + 30 * MINUTE)
      const { calls, control, engine } = yield* world(new Map([["a", a], ["b", b]]))
      yield* engine.sync("b")
      control.script = failWith(new StravaError.AppInactive({ status: 403 }))
      yield* Effect.flip(engine.refresh("a"))
      const until = engine.nextAttemptAt("a")!
      yield* TestClock.setTime(until - 1)
      assert.strictEqual((yield* Effect.flip(engine.refresh("b", { force: true, coalesce: true })))._tag, "AppInactive")
      assert.strictEqual(calls.length, 1)
      yield* TestClock.setTime(until)
      control.script = answer(refreshed(set(3, T0 + 6 * 60 * MINUTE), b))
      assert.strictEqual((yield* engine.refresh("b", { force: true, coalesce: true })).outcome, "refreshed")
      assert.strictEqual(calls.length, 2)
    }).pipe(fixedJitter))

  it.effect("a request from outside with an unsaved set writes it at once, without asking Strava", () =>
    Effect.gen(function*() {
      const tokens = set(1, T0 + 30 * MINUTE)
      const fresh = set(2, T0 + 6 * 60 * MINUTE)
      const { calls, control, engine, store } = yield* world(tokens)
      yield* engine.sync(k)
      control.script = failWith(
        new RefreshEngine.GrantUnsaved({
          key: k,
          tokens: fresh,
          previous: tokens,
          error: new GrantStore.GrantStoreError({ key: k, reason: "Io", location: "test", detail: "disk says no" })
        })
      )
      yield* Effect.flip(engine.refresh(k))
      assert.isAbove(retrying(engine).nextAttemptAt, yield* now) // within the backoff
      const result = yield* engine.refresh(k, { force: true, coalesce: true })
      assert.deepStrictEqual(result, { tokens: fresh, outcome: "refreshed" })
      assert.strictEqual(calls.length, 1)
      assert.strictEqual(Option.getOrThrow(yield* store.get(k)), fresh)
    }).pipe(fixedJitter))

  it.effect("an unsaved set is kept when the store then cannot be read either", () =>
    Effect.gen(function*() {
      const tokens = set(1, T0 + 30 * MINUTE)
      const fresh = set(2, T0 + 6 * 60 * MINUTE)
      const { control, engine } = yield* world(tokens)
      yield* engine.sync(k)
      control.script = failWith(
        new RefreshEngine.GrantUnsaved({
          key: k,
          tokens: fresh,
          previous: tokens,
          error: new GrantStore.GrantStoreError({ key: k, reason: "Io", location: "test", detail: "disk says no" })
        })
      )
      yield* Effect.flip(engine.refresh(k))
      control.readError = "cannot read"
      yield* engine.sync(k)
      const state = retrying(engine)
      assert.strictEqual(state.failures, 2)
      assert.strictEqual(state.lastError._tag, "GrantStoreError")
      assert.strictEqual(state.unsaved?.tokens, fresh)
    }).pipe(fixedJitter))

  it.effect("a store unreadable from the start: no token to serve until it reads; the retry asks with nothing seen", () =>
    Effect.gen(function*() {
      const logs: Array<Logged> = []
      const tokens = set(1, T0 + 30 * MINUTE)
      const { calls, control, engine } = yield* world(tokens)
      control.readError = "cannot read"
      yield* engine.sync(k).pipe(Effect.provide(capturing(logs)))
      const state = retrying(engine)
      assert.isUndefined(state.tokens)
      assert.strictEqual(logs[0]?.annotations["token_valid"], false)
      const error = yield* Effect.flip(engine.token(k))
      assert.strictEqual(error._tag, "TokenUnavailable")
      assert.strictEqual(
        error._tag === "TokenUnavailable" ? error.reason : "",
        `grant store test: cannot read Next attempt at ${iso(state.nextAttemptAt)}.`
      )
      // the store reads again at the next attempt: the locked procedure re-reads it, with nothing seen before
      control.readError = undefined
      yield* TestClock.setTime(state.nextAttemptAt)
      control.script = answer(RefreshEngine.Outcome.Current({ tokens }))
      assert.strictEqual((yield* engine.refresh(k)).outcome, "current")
      assert.deepStrictEqual(calls, [{ force: true, margin: 45 * MINUTE, seen: undefined }])
    }).pipe(fixedJitter))

  it.effect("the log says an expired token is not valid while retrying", () =>
    Effect.gen(function*() {
      const logs: Array<Logged> = []
      const tokens = set(1, T0 - SECOND)
      const { control, engine } = yield* world(tokens)
      yield* engine.sync(k)
      control.script = failWith(makeServerError())
      yield* Effect.flip(engine.refresh(k).pipe(Effect.provide(capturing(logs))))
      assert.strictEqual(logs[0]?.annotations["token_valid"], false)
    }).pipe(fixedJitter))
})

describe("RefreshEngine, exactly: more edges", () => {
  it.effect("a grant loaded when already due is scheduled in the past (due now), with no floor after a load", () =>
    Effect.gen(function*() {
      const tokens = set(1, T0 + 30 * MINUTE)
      const { engine } = yield* world(tokens)
      yield* engine.sync(k)
      assert.strictEqual(active(engine).nextRefreshAt, tokens.expiresAt * 1000 - 45 * MINUTE - 15 * SECOND)
      assert.isBelow(engine.nextAttemptAt(k)!, T0)
    }).pipe(fixedJitter))

  it.effect("a scheduled refresh writes an unsaved set even when the set it holds is not due", () =>
    Effect.gen(function*() {
      const tokens = set(1, T0 + 6 * 60 * MINUTE)
      const fresh = set(2, T0 + 12 * 60 * MINUTE)
      const { calls, control, engine, store } = yield* world(tokens)
      yield* engine.sync(k)
      control.script = failWith(
        new RefreshEngine.GrantUnsaved({
          key: k,
          tokens: fresh,
          previous: tokens,
          error: new GrantStore.GrantStoreError({ key: k, reason: "Io", location: "test", detail: "disk says no" })
        })
      )
      yield* Effect.flip(engine.refresh(k, { force: true })) // e.g. invalidate: Strava answered, the write failed
      yield* TestClock.setTime(retrying(engine).nextAttemptAt)
      const result = yield* engine.refresh(k) // the schedule's attempt, not forced
      assert.deepStrictEqual(result, { tokens: fresh, outcome: "refreshed" })
      assert.strictEqual(calls.length, 1)
      assert.strictEqual(Option.getOrThrow(yield* store.get(k)), fresh)
    }).pipe(fixedJitter))

  it("GrantUnsaved's message: the store's error, then that the rotated set is kept and written later", () => {
    const error = new RefreshEngine.GrantUnsaved({
      key: k,
      tokens: set(2, T0),
      previous: set(1, T0),
      error: new GrantStore.GrantStoreError({
        key: k,
        reason: "Io",
        location: "/state/token.json",
        detail: "disk says no"
      })
    })
    assert.strictEqual(
      error.message,
      "grant store /state/token.json: disk says no Strava has already rotated the refresh token; the new one is kept " +
        "in memory and written as soon as the store accepts it. Fix the store at once."
    )
  })
})

describe("RefreshEngine scheduler, exactly: reading the store", () => {
  it.effect("token() serves the set it holds without reading the store; what another process stored comes with sync", () =>
    Effect.gen(function*() {
      const tokens = set(1, T0 + 6 * 60 * MINUTE)
      const theirs = set(2, T0 + 6 * 60 * MINUTE)
      const { control, engine, store } = yield* world(tokens)
      assert.strictEqual(yield* engine.token(k), tokens) // not read yet: read once
      assert.strictEqual(control.reads, 1)
      yield* store.put(k, theirs)
      assert.strictEqual(yield* engine.token(k), tokens)
      assert.strictEqual(control.reads, 1)
      yield* engine.sync(k)
      assert.strictEqual(yield* engine.token(k), theirs)
    }).pipe(fixedJitter))

  it.effect("a login stored after the grant was removed or refused is picked up by token() and refresh() without a sync", () =>
    Effect.gen(function*() {
      for (const how of ["removed", "refused"] as const) {
        for (const call of ["token", "refresh"] as const) {
          const tokens = set(1, T0 + 30 * MINUTE)
          const login = set(2, T0 + 6 * 60 * MINUTE)
          const { control, engine, store } = yield* world(tokens)
          yield* engine.sync(k)
          if (how === "removed") {
            yield* store.remove(k)
            yield* engine.sync(k)
            assert.strictEqual(engine.state(k)._tag, "Empty")
          } else {
            control.script = failWith(makeInvalidGrant())
            yield* Effect.flip(engine.refresh(k))
            assert.strictEqual(engine.state(k)._tag, "NeedsLogin")
          }
          yield* store.put(k, login)
          const got = call === "token" ? yield* engine.token(k) : (yield* engine.refresh(k)).tokens
          assert.strictEqual(got, login, `${how}, then ${call}`)
        }
      }
    }).pipe(fixedJitter))

  it.effect("a store unreadable from the start that then says there is no grant: Empty, with the warning", () =>
    Effect.gen(function*() {
      const logs: Array<Logged> = []
      const { control, engine } = yield* world(undefined)
      control.readError = "cannot read"
      yield* engine.sync(k)
      assert.strictEqual(retrying(engine).tokens, undefined)
      control.readError = undefined
      yield* engine.sync(k).pipe(Effect.provide(capturing(logs)))
      assert.strictEqual(engine.state(k)._tag, "Empty")
      assert.deepStrictEqual(logs.map((l) => [l.level, l.message, l.annotations["reason"]]), [
        ["WARN", "needs login", "no grant stored"]
      ])
    }).pipe(fixedJitter))

  it.effect("after a failure, a set another process stored meanwhile is adopted on sync", () =>
    Effect.gen(function*() {
      const tokens = set(1, T0 + 30 * MINUTE)
      const theirs = set(2, T0 + 6 * 60 * MINUTE)
      const { control, engine, store } = yield* world(tokens)
      yield* engine.sync(k)
      control.script = failWith(makeServerError())
      yield* Effect.flip(engine.refresh(k))
      yield* store.put(k, theirs)
      yield* engine.sync(k)
      assert.strictEqual(active(engine).tokens, theirs)
    }).pipe(fixedJitter))

  it.effect("during an app-wide refusal a grant with nothing scheduled (no grant stored) still has no next attempt", () =>
    Effect.gen(function*() {
      const { control, engine } = yield* world(new Map([["a", set(1, T0 + 30 * MINUTE)]]))
      yield* engine.sync("none")
      control.script = failWith(new StravaError.AppInactive({ status: 403 }))
      yield* Effect.flip(engine.refresh("a"))
      assert.isAbove(engine.nextAttemptAt("a")!, T0)
      assert.isUndefined(engine.nextAttemptAt("none"))
    }).pipe(fixedJitter))

  it.effect("invalidate of a grant removed from the store is LoginRequired, also within the floor of the last attempt", () =>
    Effect.gen(function*() {
      const tokens = set(1, T0 + 30 * MINUTE)
      const { control, engine, store } = yield* world(tokens)
      control.script = answer(refreshed(set(2, T0 + 6 * 60 * MINUTE), tokens))
      yield* engine.refresh(k)
      yield* store.remove(k)
      yield* engine.sync(k)
      yield* TestClock.adjust(SECOND)
      const error = yield* Effect.flip(engine.invalidate(k, tokens.accessToken))
      assert.strictEqual(error._tag, "LoginRequired")
    }).pipe(fixedJitter))

  it.effect("a fast clock's same token is served until the next attempt only while Active: after a failure, none", () =>
    Effect.gen(function*() {
      const tokens = set(1, T0 - 10 * MINUTE)
      const { control, engine } = yield* world(tokens)
      yield* engine.sync(k)
      control.script = answer(refreshed(tokens, tokens))
      yield* engine.refresh(k) // the same token: served although expired here
      assert.strictEqual(yield* engine.token(k), tokens)
      yield* TestClock.setTime(active(engine).nextRefreshAt)
      control.script = failWith(makeServerError())
      yield* Effect.flip(engine.refresh(k))
      const error = yield* Effect.flip(engine.token(k))
      assert.strictEqual(error._tag, "TokenUnavailable")
    }).pipe(fixedJitter))
})
