import { assert, describe, it } from "@effect/vitest"
import { MockStrava, Simulator } from "@strava-auth/testing"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"

import * as GrantStore from "../src/GrantStore.js"
import * as RefreshEngine from "../src/RefreshEngine.js"
import * as StravaError from "../src/StravaError.js"
import { StravaOAuth } from "../src/StravaOAuth.js"
import type { TokenSet } from "../src/Token.js"
import { layer, login } from "./fixtures.js"

const MINUTE = 60_000
const HOUR = 60 * MINUTE
const key = GrantStore.defaultKey

/** The engine over `store`, refreshing in this process. */
const engineOver = (store: GrantStore.GrantStoreShape, options: Omit<RefreshEngine.EngineOptions, "execute"> = {}) =>
  Effect.gen(function*() {
    const execute = yield* RefreshEngine.inProcess
    return yield* RefreshEngine.make({ ...options, execute })
  }).pipe(Effect.provideService(GrantStore.GrantStore, store))

const refreshRequests = Effect.map(
  MockStrava.MockStrava,
  (mock) => Effect.map(mock.log, (log) => log.filter((entry) => entry.grantType === "refresh_token"))
).pipe(Effect.flatten)

/**
 * Drives the scheduler the way the daemon does for `millis` of simulated time: whenever the next attempt is
 * due, `engine.refresh(key)`; then the token an app would be served, which must stay valid (on Strava's clock)
 * until the next attempt; then the TestClock moves to that attempt.
 */
const drive = (engine: RefreshEngine.Engine, millis: number, stravaOffset = 0) =>
  Effect.gen(function*() {
    const end = (yield* Clock.currentTimeMillis) + millis
    yield* engine.sync(key)
    let steps = 0
    for (;;) {
      const now = yield* Clock.currentTimeMillis
      if (now >= end) return steps
      assert.isBelow(++steps, 10_000, "the scheduler never lets time pass")
      const due = engine.nextAttemptAt(key)
      assert.isDefined(due, `no next attempt in state ${engine.state(key)._tag}`)
      if (due! <= now) yield* engine.refresh(key)
      const next = engine.nextAttemptAt(key)!
      assert.isAbove(next, now, "the next attempt is in the past right after one")
      const served = yield* engine.token(key)
      assert.isAbove(
        served.expiresAt * 1000,
        Math.min(next, end) + stravaOffset,
        `served a token that expires (on Strava's clock) before the next attempt at ${new Date(next).toISOString()}`
      )
      yield* TestClock.setTime(Math.min(next, end))
    }
  })

/** No loop: the refresh requests are at least the floor apart, and few per token lifetime. */
const assertNoLoop = (
  requests: ReadonlyArray<Simulator.LogEntry>,
  lifetime: number,
  options: { readonly floor: number; readonly perLifetime: number; readonly sameAnswers: number }
) => {
  assert.isAbove(requests.length, 0)
  for (let i = 1; i < requests.length; i++) {
    assert.isAtLeast(requests[i]!.at - requests[i - 1]!.at, options.floor, `requests ${i - 1} and ${i} too close`)
  }
  for (const [i, request] of requests.entries()) {
    const within = requests.filter((r) => r.at >= request.at && r.at < request.at + lifetime).length
    assert.isAtMost(within, options.perLifetime, `${within} requests in one token lifetime from request ${i}`)
  }
  // Strava's "same token" answers are what a loop is made of; the engine learns after one or two.
  const same = requests.filter((r) => r.outcome === "same token").length
  assert.isAtMost(same, options.sameAnswers, `${same} same-token answers in ${requests.length} requests`)
  for (const request of requests) assert.strictEqual(request.status, 200)
}

describe("RefreshEngine scheduler: the learned one-hour rule", () => {
  const lifetime = 2 * MINUTE
  it.effect("a margin above Strava's threshold never turns into a refresh loop (2 m tokens, 1 m threshold)", () =>
    Effect.gen(function*() {
      const tokens = yield* login()
      const engine = yield* engineOver(yield* GrantStore.makeMemory(tokens), { margin: "45 minutes" })
      yield* drive(engine, 2 * HOUR)
      const requests = yield* refreshRequests
      assertNoLoop(requests, lifetime, {
        floor: Duration.toMillis(RefreshEngine.defaultFloor),
        perLifetime: 3,
        sameAnswers: 3
      })
      // It kept refreshing: about one new token per lifetime, not one per threshold crossing missed.
      assert.isAtLeast(requests.filter((r) => r.outcome === "refreshed").length, 2 * HOUR / lifetime - 5)
    }).pipe(Effect.provide(layer({ mock: { accessTokenLifetimeMillis: lifetime, refreshThresholdMillis: MINUTE } }))))

  it.effect("a local clock 20 minutes fast never turns into a refresh loop (6 h tokens, 1 h threshold, 45 m margin)", () =>
    Effect.gen(function*() {
      const offset = -20 * MINUTE // Strava's time = ours - 20 minutes
      const tokens = yield* login()
      const engine = yield* engineOver(yield* GrantStore.makeMemory(tokens))
      yield* drive(engine, 48 * HOUR, offset)
      const requests = yield* refreshRequests
      assertNoLoop(requests, 6 * HOUR, {
        floor: Duration.toMillis(RefreshEngine.defaultFloor),
        perLifetime: 3,
        sameAnswers: 2
      })
      // Every token Strava minted was refreshed before it expired: one new token per lifetime or so.
      assert.isAtLeast(requests.filter((r) => r.outcome === "refreshed").length, 48 / 6 - 1)
    }).pipe(Effect.provide(layer({ mock: { clockOffsetMillis: -20 * MINUTE } }))))
})

describe("RefreshEngine scheduler: an app-level refusal", () => {
  const second: Simulator.Athlete = { ...Simulator.defaultAthlete, id: 1002, username: "second", firstname: "Sam" }

  it.effect("AppInactive blocks every grant of the app, keeps the grants, never asks for a login; resetApp lifts it", () =>
    Effect.gen(function*() {
      const mock = yield* MockStrava.MockStrava
      const a = yield* login()
      const b = yield* login({ athleteId: second.id })
      const store = yield* GrantStore.makeMemory(new Map([["a", a], ["b", b]]))
      const engine = yield* engineOver(store)
      yield* TestClock.adjust(5.5 * HOUR) // both due
      yield* mock.setActive(false)
      const error = yield* Effect.flip(engine.refresh("a"))
      assert.strictEqual(error._tag, "AppInactive")
      const refused = engine.state("a")
      assert.strictEqual(refused._tag, "Retrying")
      assert.isTrue(refused._tag === "Retrying" && refused.appRefused)
      assert.isTrue(refused._tag === "Retrying" && refused.unsaved === undefined)
      const block = engine.nextAttemptAt("a")!
      const now = yield* Clock.currentTimeMillis
      assert.isAbove(block, now)
      // The grant is kept in the store and still served while valid.
      assert.isTrue(Option.getOrThrow(yield* store.get("a")).sameRefreshToken(a))
      assert.isTrue((yield* engine.token("a")).sameAccessToken(a))
      // The other grant is blocked too: its next attempt waits for the app's block, and asking for its token
      // serves the valid one without asking Strava.
      yield* engine.sync("b")
      assert.isAtLeast(engine.nextAttemptAt("b")!, block)
      const asked = (yield* refreshRequests).length
      assert.isTrue((yield* engine.token("b")).sameAccessToken(b))
      assert.strictEqual((yield* refreshRequests).length, asked)
      // Retried after the backoff, still refused: still Retrying, never NeedsLogin, the block grows.
      yield* TestClock.setTime(block)
      assert.strictEqual((yield* Effect.flip(engine.refresh("a")))._tag, "AppInactive")
      assert.strictEqual(engine.state("a")._tag, "Retrying")
      assert.isAbove(engine.nextAttemptAt("a")! - block, block - now)
      assert.isTrue(Option.getOrThrow(yield* store.get("a")).sameRefreshToken(a))
      // The app is fixed; resetApp: both grants are due at once and refresh.
      yield* mock.setActive(true)
      yield* engine.resetApp
      const at = yield* Clock.currentTimeMillis
      assert.isAtMost(engine.nextAttemptAt("a")!, at)
      assert.isAtMost(engine.nextAttemptAt("b")!, at)
      assert.strictEqual((yield* engine.refresh("a")).outcome, "refreshed")
      assert.strictEqual((yield* engine.refresh("b")).outcome, "refreshed")
      assert.strictEqual(engine.state("a")._tag, "Active")
      assert.strictEqual(
        Redacted.value(Option.getOrThrow(yield* store.get("a")).refreshToken),
        yield* mock.liveRefreshToken()
      )
      assert.strictEqual(
        Redacted.value(Option.getOrThrow(yield* store.get("b")).refreshToken),
        yield* mock.liveRefreshToken(second.id)
      )
    }).pipe(Effect.provide(layer({ mock: { athletes: [Simulator.defaultAthlete, second] } }))))
})

describe("RefreshEngine.refreshOnce: a refused refresh token is checked against the store", () => {
  it.effect("another process rotated the grant between our read and our request: the stored set is used, no NeedsLogin", () =>
    Effect.gen(function*() {
      const mock = yield* MockStrava.MockStrava
      const oauth = yield* StravaOAuth
      const tokens = yield* login()
      const inner = yield* GrantStore.makeMemory(tokens)
      // The other process: once armed, right after our locked read it refreshes at Strava and stores the
      // rotation, so our request presents a refresh token Strava has just invalidated.
      let armed = false
      let rotated: TokenSet | undefined
      const store: GrantStore.GrantStoreShape = {
        ...inner,
        get: (k) =>
          Effect.tap(inner.get(k), (read) =>
            armed && Option.isSome(read)
              ? Effect.gen(function*() {
                armed = false
                rotated = yield* Effect.orDie(oauth.refresh(read.value))
                yield* Effect.orDie(inner.put(k, rotated))
              })
              : Effect.void)
      }
      const engine = yield* engineOver(store)
      yield* engine.sync(key)
      yield* TestClock.adjust(5.5 * HOUR)
      armed = true
      const result = yield* engine.refresh(key)
      assert.isDefined(rotated)
      const requests = yield* refreshRequests
      assert.deepStrictEqual(requests.map((r) => r.outcome), ["refreshed", "invalid refresh token"])
      assert.strictEqual(result.outcome, "current")
      assert.isTrue(result.tokens.sameAccessToken(rotated!) && result.tokens.sameRefreshToken(rotated!))
      assert.strictEqual(engine.state(key)._tag, "Active")
      assert.isTrue((yield* engine.token(key)).sameAccessToken(rotated!))
      assert.strictEqual(Redacted.value(result.tokens.refreshToken), yield* mock.liveRefreshToken())
    }).pipe(Effect.provide(layer())))
})

describe("RefreshEngine policy", () => {
  it("verdictOf: every error tag", () => {
    const none = Option.none()
    const errors: ReadonlyArray<readonly [RefreshEngine.RefreshError, RefreshEngine.Verdict]> = [
      [
        new StravaError.InvalidGrant({
          grant: "refresh_token",
          status: 400,
          resource: "RefreshToken",
          field: "refresh_token",
          code: "invalid"
        }),
        "grant"
      ],
      [new RefreshEngine.LoginRequired({ reason: "none stored" }), "grant"],
      [new StravaError.MissingScope({ status: 401, scope: "activity:read" }), "grant"],
      [
        new StravaError.Unauthorized({ status: 401, resource: "Athlete", field: "access_token", code: "invalid" }),
        "grant"
      ],
      [new StravaError.InvalidClient({ status: 401, field: "client_secret", code: "invalid" }), "app"],
      [new StravaError.AppInactive({ status: 403 }), "app"],
      [
        new StravaError.RateLimited({
          status: 429,
          limit: none,
          usage: none,
          readLimit: none,
          readUsage: none,
          retryAt: 0
        }),
        "retry"
      ],
      [new StravaError.ServerError({ status: 503 }), "retry"],
      [new StravaError.TransportError({ reason: "Timeout", detail: "timed out" }), "retry"],
      [new StravaError.UnexpectedResponse({ status: 418, reason: "Status", detail: "teapot" }), "retry"],
      [new GrantStore.GrantStoreError({ key, reason: "Io", location: "test", detail: "disk full" }), "retry"],
      [
        new RefreshEngine.GrantUnsaved({
          key,
          tokens: undefined as unknown as TokenSet,
          previous: undefined as unknown as TokenSet,
          error: new GrantStore.GrantStoreError({ key, reason: "Io", location: "test", detail: "disk full" })
        }),
        "retry"
      ],
      [new RefreshEngine.RefreshAborted({ detail: "the helper gave no report" }), "retry"]
    ]
    // Every tag of the union is listed once.
    assert.deepStrictEqual(
      errors.map(([e]) => e._tag).sort(),
      [
        "AppInactive",
        "GrantStoreError",
        "GrantUnsaved",
        "InvalidClient",
        "InvalidGrant",
        "LoginRequired",
        "MissingScope",
        "RateLimited",
        "RefreshAborted",
        "ServerError",
        "TransportError",
        "Unauthorized",
        "UnexpectedResponse"
      ]
    )
    for (const [error, verdict] of errors) assert.strictEqual(RefreshEngine.verdictOf(error), verdict, error._tag)
  })

  it.effect("backoffMillis doubles from 1 s and caps at 5 minutes, jittered ±20 %", () =>
    Effect.gen(function*() {
      for (let failures = 1; failures <= 20; failures++) {
        const base = Math.min(1000 * 2 ** (failures - 1), 5 * MINUTE)
        for (let sample = 0; sample < 20; sample++) {
          const wait = yield* RefreshEngine.backoffMillis(failures)
          assert.isAtLeast(wait, base * 0.8, `failure ${failures}`)
          assert.isAtMost(wait, base * 1.2, `failure ${failures}`)
        }
      }
      // It grows: two more failures always wait longer, whatever the jitter, until the cap.
      for (let failures = 1; failures <= 7; failures++) {
        assert.isAbove(yield* RefreshEngine.backoffMillis(failures + 2), yield* RefreshEngine.backoffMillis(failures))
      }
      assert.isAtMost(yield* RefreshEngine.backoffMillis(1000), 5 * MINUTE * 1.2)
    }))
})

/** A memory store whose writes (`put`) and locks (`withLock`) can be made to fail, to break the store on cue. */
const breakableStore = (tokens: TokenSet) =>
  Effect.gen(function*() {
    const inner = yield* GrantStore.makeMemory(tokens)
    const control = { failPuts: false, failLocks: 0 }
    const broken = (k: string, reason: "Io" | "Busy") =>
      new GrantStore.GrantStoreError({ key: k, reason, location: "test", detail: `the store is broken (${reason})` })
    const store: GrantStore.GrantStoreShape = {
      ...inner,
      put: (k, set, options) => control.failPuts ? Effect.fail(broken(k, "Io")) : inner.put(k, set, options),
      withLock: (k, effect) =>
        control.failLocks > 0
          ? Effect.suspend(() => {
            control.failLocks -= 1
            return Effect.fail(broken(k, "Busy"))
          })
          : inner.withLock(k, effect)
    }
    return { store, control }
  })

/** Runs `effect` while the TestClock moves on by `millis` (for the store's write retries). */
const during = <A, E, R>(millis: number, effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(effect)
    yield* TestClock.adjust(millis)
    return yield* Fiber.join(fiber)
  })

describe("RefreshEngine scheduler: a set Strava answered is never dropped", () => {
  it.effect("the unsaved set survives a retry whose write fails otherwise (the lock is Busy) and is written later", () =>
    Effect.gen(function*() {
      const mock = yield* MockStrava.MockStrava
      const tokens = yield* login()
      const { control, store } = yield* breakableStore(tokens)
      const engine = yield* engineOver(store)
      yield* engine.sync(key)
      yield* TestClock.adjust(5.5 * HOUR) // due
      // Strava rotates; every write fails: GrantUnsaved, the set is kept.
      control.failPuts = true
      const first = yield* during(5_000, Effect.flip(engine.refresh(key)))
      assert.strictEqual(first._tag, "GrantUnsaved")
      const kept = engine.state(key)
      assert.isTrue(kept._tag === "Retrying" && kept.unsaved !== undefined)
      const unsaved = kept._tag === "Retrying" ? kept.unsaved!.tokens : undefined
      assert.strictEqual(Redacted.value(unsaved!.refreshToken), yield* mock.liveRefreshToken())
      // The retry's write fails with something else than GrantUnsaved: the store's lock is busy.
      control.failPuts = false
      control.failLocks = 1
      yield* TestClock.setTime(engine.nextAttemptAt(key)!)
      const second = yield* Effect.flip(engine.refresh(key))
      assert.strictEqual(second._tag, "GrantStoreError")
      assert.strictEqual(control.failLocks, 0)
      const still = engine.state(key)
      assert.strictEqual(still._tag, "Retrying")
      assert.strictEqual(still._tag === "Retrying" ? still.unsaved?.tokens : undefined, unsaved)
      // The daemon's loop re-reads the store on every tick: it reads fine again, and the set is still kept.
      yield* engine.sync(key)
      const synced = engine.state(key)
      assert.strictEqual(synced._tag === "Retrying" ? synced.unsaved?.tokens : undefined, unsaved)
      // The store works again: the kept set is written, without asking Strava again, and it is the live one.
      yield* TestClock.setTime(engine.nextAttemptAt(key)!)
      const third = yield* engine.refresh(key)
      assert.strictEqual(third.outcome, "refreshed")
      const stored = Option.getOrThrow(yield* store.get(key))
      assert.isTrue(stored.sameRefreshToken(unsaved!) && stored.sameAccessToken(unsaved!))
      assert.strictEqual(Redacted.value(stored.refreshToken), yield* mock.liveRefreshToken())
      assert.strictEqual(engine.state(key)._tag, "Active")
      assert.strictEqual((yield* refreshRequests).length, 1)
    }).pipe(Effect.provide(layer())))
})

describe("RefreshEngine scheduler: a refresh asked from outside (POST /refresh) spends nothing the schedule would not", () => {
  const outside = { force: true, coalesce: true } as const
  const second: Simulator.Athlete = { ...Simulator.defaultAthlete, id: 1002, username: "second", firstname: "Sam" }

  it.effect("during a backoff: no request, fails with the state's error", () =>
    Effect.gen(function*() {
      const mock = yield* MockStrava.MockStrava
      const engine = yield* engineOver(yield* GrantStore.makeMemory(yield* login()))
      yield* TestClock.adjust(5.5 * HOUR)
      yield* mock.inject({ endpoint: "token", fault: { _tag: "ServerError", status: 503 }, when: { times: 1 } })
      assert.strictEqual((yield* Effect.flip(engine.refresh(key)))._tag, "ServerError")
      const state = engine.state(key)
      assert.isTrue(state._tag === "Retrying" && state.nextAttemptAt > (yield* Clock.currentTimeMillis))
      const error = yield* Effect.flip(engine.refresh(key, outside))
      assert.strictEqual(error, state._tag === "Retrying" ? state.lastError : undefined)
      assert.strictEqual((yield* refreshRequests).length, 1)
      // After the backoff it is asked again.
      yield* TestClock.setTime(engine.nextAttemptAt(key)!)
      assert.strictEqual((yield* engine.refresh(key, outside)).outcome, "refreshed")
      assert.strictEqual((yield* refreshRequests).length, 2)
    }).pipe(Effect.provide(layer())))

  it.effect("during an app-wide refusal: no request for another grant of the app, fails with the app's error", () =>
    Effect.gen(function*() {
      const mock = yield* MockStrava.MockStrava
      const a = yield* login()
      const b = yield* login({ athleteId: second.id })
      const engine = yield* engineOver(yield* GrantStore.makeMemory(new Map([["a", a], ["b", b]])))
      yield* engine.sync("b")
      yield* TestClock.adjust(5.5 * HOUR)
      yield* mock.setActive(false)
      assert.strictEqual((yield* Effect.flip(engine.refresh("a")))._tag, "AppInactive")
      assert.strictEqual(engine.state("b")._tag, "Active")
      const error = yield* Effect.flip(engine.refresh("b", outside))
      assert.strictEqual(error._tag, "AppInactive")
      assert.strictEqual((yield* refreshRequests).length, 1)
    }).pipe(Effect.provide(layer({ mock: { athletes: [Simulator.defaultAthlete, second] } }))))

  it.effect("in NeedsLogin: no request, fails with LoginRequired", () =>
    Effect.gen(function*() {
      const mock = yield* MockStrava.MockStrava
      const engine = yield* engineOver(yield* GrantStore.makeMemory(yield* login()))
      yield* TestClock.adjust(5.5 * HOUR)
      yield* mock.revokeAthlete()
      assert.strictEqual((yield* Effect.flip(engine.refresh(key)))._tag, "InvalidGrant")
      assert.strictEqual(engine.state(key)._tag, "NeedsLogin")
      yield* TestClock.adjust(10 * MINUTE)
      const error = yield* Effect.flip(engine.refresh(key, outside))
      assert.strictEqual(error._tag, "LoginRequired")
      assert.strictEqual((yield* refreshRequests).length, 1)
    }).pipe(Effect.provide(layer())))

  it.effect("invalidate twice within the floor asks Strava once; after the floor, again", () =>
    Effect.gen(function*() {
      const tokens = yield* login()
      const engine = yield* engineOver(yield* GrantStore.makeMemory(tokens))
      // Strava keeps answering with the same access token (more than an hour left): it stays the rejected one.
      const first = yield* engine.invalidate(key, tokens.accessToken)
      assert.isTrue(first.sameAccessToken(tokens))
      yield* TestClock.adjust(Duration.toMillis(RefreshEngine.defaultFloor) - 1000)
      const again = yield* engine.invalidate(key, tokens.accessToken)
      assert.isTrue(again.sameAccessToken(tokens))
      assert.strictEqual((yield* refreshRequests).length, 1)
      yield* TestClock.adjust(2000)
      yield* engine.invalidate(key, tokens.accessToken)
      assert.strictEqual((yield* refreshRequests).length, 2)
    }).pipe(Effect.provide(layer())))
})

describe("RefreshEngine scheduler: a clock fast by more than Strava's threshold", () => {
  it.effect("a clock 2 hours fast (6 h tokens, 1 h threshold, 45 m margin): few requests per lifetime, never closer than the floor, growing gaps, a warning", () =>
    Effect.gen(function*() {
      const logs: Array<{ readonly level: string; readonly message: string }> = []
      const capture = Logger.make(({ logLevel, message }) =>
        void logs.push({ level: logLevel.label, message: Array.isArray(message) ? message.join(" ") : String(message) })
      )
      const floor = Duration.toMillis(RefreshEngine.defaultFloor)
      const offset = -2 * HOUR // Strava's time = ours - 2 hours
      const tokens = yield* login()
      const engine = yield* engineOver(yield* GrantStore.makeMemory(tokens))
      yield* drive(engine, 48 * HOUR, offset).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, capture)))
      const requests = yield* refreshRequests
      // (A six-hour window holds one token's requests and the start of the next one's.)
      assertNoLoop(requests, 6 * HOUR, { floor, perLifetime: 20, sameAnswers: 100 })
      // Every token was refreshed before it expired on Strava's clock: about one mint per lifetime.
      assert.isAtLeast(requests.filter((r) => r.outcome === "refreshed").length, 48 / 6 - 1)
      // Within one token's run of same-token answers, once the requests come at the floor, the gaps only grow.
      let run: Array<number> = []
      const runs: Array<Array<number>> = []
      for (const request of requests) {
        run.push(request.at)
        if (request.outcome === "refreshed") {
          runs.push(run)
          run = []
        }
      }
      for (const [i, times] of runs.entries()) {
        assert.isAtMost(times.length, 12, `run ${i}: ${times.length} requests for one token`)
        const gaps = times.slice(1).map((t, j) => t - times[j]!)
        const tightest = gaps.indexOf(Math.min(...gaps))
        for (let j = tightest + 1; j < gaps.length; j++) {
          assert.isAtLeast(gaps[j]!, gaps[j - 1]!, `run ${i}: the gaps shrink again after the floor: ${gaps}`)
        }
        if (gaps.length > 3) assert.isAbove(gaps.at(-1)!, 4 * floor, `run ${i}: the gap does not grow: ${gaps}`)
      }
      assert.isTrue(
        logs.some((l) => l.level === "WARN" && l.message.includes("the clock is probably fast")),
        "the engine warns that the clock is probably fast"
      )
    }).pipe(Effect.provide(layer({ mock: { clockOffsetMillis: -2 * HOUR } }))))
})

describe("RefreshEngine scheduler: a scheduled refresh", () => {
  it.effect("sends exactly one request when it comes due: every executor call of the schedule is Refreshed", () =>
    Effect.gen(function*() {
      const outcomes: Array<string> = []
      const store = yield* GrantStore.makeMemory(yield* login())
      const engine = yield* Effect.gen(function*() {
        const inner = yield* RefreshEngine.inProcess
        const execute: RefreshEngine.Executor = (k, options) =>
          inner(k, options).pipe(
            Effect.tapBoth({
              onFailure: (error) => Effect.sync(() => outcomes.push(error._tag)),
              onSuccess: (outcome) => Effect.sync(() => outcomes.push(outcome._tag))
            })
          )
        return yield* RefreshEngine.make({ execute })
      }).pipe(Effect.provideService(GrantStore.GrantStore, store))
      yield* drive(engine, 48 * HOUR)
      assert.isAtLeast(outcomes.length, 48 / 6)
      assert.deepStrictEqual(outcomes, outcomes.map(() => "Refreshed"))
      assert.strictEqual((yield* refreshRequests).length, outcomes.length)
    }).pipe(Effect.provide(layer())))
})
