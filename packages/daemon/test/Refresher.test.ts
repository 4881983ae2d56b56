import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

import { assert, describe, it } from "@effect/vitest"
import { MockStrava } from "@strava-auth/testing"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/TestClock"

import * as Refresher from "../src/Refresher.js"
import * as TokenFile from "../src/TokenFile.js"
import { login, TestLayer } from "./inProcess.js"

// The scheduler in-process: the very `Refresher.make` the daemon runs, over a real token file, with only
// Strava (the in-process mock) and the clock replaced. Its executor is the default one, `RefreshEngine.refreshOnce`
// in this process: the same function the daemon's helper process runs. TestClock drives days of Strava time.

/** Polls (real time, bounded) until the refresher has caught up with the clock. */
const settle = (
  refresher: Refresher.Refresher,
  what: (s: Refresher.Snapshot, now: number) => boolean,
  label = "caught up"
) =>
  Effect.gen(function*() {
    for (let i = 0; i < 2000; i++) {
      if (what(refresher.snapshot(), yield* Clock.currentTimeMillis)) return
      yield* Effect.promise(() => new Promise((r) => setTimeout(r, 2)))
    }
    assert.fail(`the refresher did not settle (${label}): ${JSON.stringify(refresher.snapshot().status)}`)
  })

const caughtUp = (s: Refresher.Snapshot, now: number) =>
  s.status !== "refreshing" && s.nextRefreshAt !== undefined && s.nextRefreshAt > now

/** A temp directory under the run's TMPDIR, removed when the test's scope closes (passed or failed). */
const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "refresher-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

const setup = (margin: Duration.DurationInput) =>
  Effect.gen(function*() {
    const dir = yield* tempDir
    const tokenFile = Path.join(dir, "token.json")
    const mock = yield* MockStrava.MockStrava
    yield* TokenFile.write(tokenFile, yield* login)
    const refresher = yield* Refresher.make({ tokenFile, margin: Duration.decode(margin) })
    yield* Effect.forkScoped(refresher.run)
    yield* settle(refresher, caughtUp)
    const refreshes = Effect.map(mock.log, (log) => log.filter((e) => e.grantType === "refresh_token"))
    return { dir, tokenFile, mock, refresher, refreshes }
  })

/**
 * A machine's clock through a suspend: the wall clock (`currentTimeMillis`) is TestClock's time plus an offset
 * the test can jump, while sleeps run on TestClock's time alone. A timer does not count the hours the machine
 * slept; the wall clock does. (`TestClock.setTime` cannot show this: it wakes every sleeper whose time passed.)
 */
const suspendableClock = (test: TestClock.TestClock) => {
  let offset = 0
  const millis = () => test.unsafeCurrentTimeMillis() + offset
  const clock: Clock.Clock = {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: millis,
    currentTimeMillis: Effect.sync(millis),
    unsafeCurrentTimeNanos: () => BigInt(millis()) * 1_000_000n,
    currentTimeNanos: Effect.sync(() => BigInt(millis()) * 1_000_000n),
    sleep: (duration) => test.sleep(duration)
  }
  return { clock, suspend: (duration: Duration.DurationInput) => (offset += Duration.toMillis(duration)) }
}

describe("Refresher under TestClock", () => {
  it.scoped(
    "three days: never an expired token served, a refresh every ~5 h, the file's refresh token always live",
    () =>
      Effect.gen(function*() {
        const { mock, refresher, refreshes, tokenFile } = yield* setup("45 minutes")
        for (let minute = 0; minute < 3 * 24 * 60; minute += 15) {
          yield* TestClock.adjust("15 minutes")
          yield* settle(refresher, caughtUp)
          const now = yield* Clock.currentTimeMillis
          assert.isTrue(Refresher.servable(refresher.snapshot(), now), `no valid token at minute ${minute}`)
          const file = JSON.parse(Fs.readFileSync(tokenFile, "utf8"))
          assert.strictEqual(file.refresh_token, yield* mock.liveRefreshToken(), `minute ${minute}`)
        }
        const count = (yield* refreshes).length
        // 72 h / (6 h − 45 min) ≈ 13.7 cycles
        assert.isTrue(count >= 13 && count <= 15, `${count} refreshes`)
        assert.isTrue((yield* refreshes).every((e) => e.outcome === "refreshed"))
      }).pipe(Effect.provide(TestLayer)),
    { timeout: 60_000 }
  )

  it.scoped("a suspend (the wall clock jumps 8 hours, timers do not) refreshes within one 30 s re-check", () =>
    Effect.gen(function*() {
      const test = yield* TestClock.testClock()
      const { clock, suspend } = suspendableClock(test)
      yield* Effect.gen(function*() {
        const { refresher, refreshes } = yield* setup("45 minutes")
        // (TestClock.adjust would look for the TestClock as the Clock, which the suspendable one replaces here)
        yield* test.adjust("1 hour")
        yield* settle(refresher, caughtUp)
        assert.strictEqual((yield* refreshes).length, 0)
        const expired = refresher.snapshot().tokens!
        suspend("8 hours") // the laptop slept 8 hours: the token expired meanwhile, no timer noticed
        assert.isFalse(Refresher.servable(refresher.snapshot(), yield* Clock.currentTimeMillis))
        yield* test.adjust("30 seconds") // timers see 30 s: the re-check
        yield* settle(refresher, (s, now) => caughtUp(s, now) && Refresher.servable(s, now))
        assert.strictEqual((yield* refreshes).length, 1)
        assert.isFalse(refresher.snapshot().tokens!.sameAccessToken(expired))
      }).pipe(Effect.withClock(clock))
    }).pipe(Effect.provide(TestLayer)))

  it.scoped(
    "a margin over an hour: the same token comes back once per cycle, never a loop",
    () =>
      Effect.gen(function*() {
        const { refresher, refreshes } = yield* setup("2 hours")
        for (let minute = 0; minute < 24 * 60; minute += 30) {
          yield* TestClock.adjust("30 minutes")
          yield* settle(refresher, caughtUp)
        }
        const log = yield* refreshes
        const same = log.filter((e) => e.outcome === "same token").length
        const minted = log.filter((e) => e.outcome === "refreshed").length
        assert.isTrue(minted >= 4 && minted <= 5, `${minted} minted`)
        assert.isTrue(same <= minted + 1, `${same} same-token answers`)
      }).pipe(Effect.provide(TestLayer)),
    { timeout: 30_000 }
  )

  it.scoped(
    "transient failures: the valid token keeps being served, retries back off, then it recovers",
    () =>
      Effect.gen(function*() {
        const { mock, refresher, refreshes } = yield* setup("45 minutes")
        yield* mock.inject({
          endpoint: "token",
          fault: { _tag: "ServerError", status: 502 },
          when: { times: 1_000_000 }
        })
        yield* TestClock.adjust(Duration.toMillis("315 minutes") + 31_000)
        for (let s = 0; s < 30 * 60; s += 10) {
          yield* TestClock.adjust("10 seconds")
          yield* settle(refresher, caughtUp)
          assert.isTrue(Refresher.servable(refresher.snapshot(), yield* Clock.currentTimeMillis))
        }
        const attempts = (yield* refreshes).length
        // 1 s doubling to a 5-minute cap: about a dozen attempts in 30 minutes, not hundreds
        assert.isTrue(attempts >= 6 && attempts <= 16, `${attempts} attempts`)
        assert.strictEqual(refresher.snapshot().status, "retrying")
        assert.include(refresher.snapshot().lastError, "502")
        yield* mock.clearFaults
        yield* TestClock.adjust("6 minutes")
        yield* settle(refresher, (s, now) => s.status === "ok" && caughtUp(s, now))
        assert.strictEqual(refresher.snapshot().consecutiveFailures, 0)
      }).pipe(Effect.provide(TestLayer)),
    { timeout: 30_000 }
  )

  it.scoped("a hung request times out (10 s per attempt) instead of blocking the refresher", () =>
    Effect.gen(function*() {
      const { mock, refresher } = yield* setup("45 minutes")
      yield* mock.inject({ endpoint: "token", fault: { _tag: "Hang" }, when: { times: 1 } })
      const fiber = yield* Effect.fork(Effect.either(refresher.refreshNow))
      // poll (bounded) until the request has reached the mock and hangs there
      for (let i = 0; i < 1000 && !(yield* mock.log).some((e) => e.fault === "hang"); i++) {
        yield* Effect.promise(() => new Promise((r) => setTimeout(r, 1)))
      }
      // exactly the attempt's 10 s: a second later the engine's first retry (1 s ± 20 %) could already be running
      yield* TestClock.adjust("10 seconds")
      const result = yield* Fiber.join(fiber)
      assert.strictEqual(result._tag === "Left" && result.left._tag, "TransportError")
      assert.strictEqual(refresher.snapshot().status, "retrying")
    }).pipe(Effect.provide(TestLayer)))

  it.scoped(
    "a revoked grant: needs_login, no token request while waiting for a login, a new file brings it back",
    () =>
      Effect.gen(function*() {
        const { mock, refresher, refreshes, tokenFile } = yield* setup("45 minutes")
        yield* mock.revokeAthlete()
        yield* Effect.either(refresher.refreshNow)
        assert.strictEqual(refresher.snapshot().status, "needs_login")
        assert.include(refresher.snapshot().lastError, "Log in again")
        assert.isFalse(Refresher.servable(refresher.snapshot(), yield* Clock.currentTimeMillis))
        const attempts = (yield* refreshes).length
        assert.strictEqual(attempts, 1) // the refused one
        // Two hours in 30 s steps (every re-check of the loop runs), the token long expired: not one request.
        for (let s = 0; s < 2 * 3600; s += 30) {
          yield* TestClock.adjust("30 seconds")
          yield* Effect.yieldNow()
        }
        yield* settle(refresher, (s) => s.status === "needs_login", "needs_login")
        assert.strictEqual((yield* refreshes).length, attempts)
        // A login writes a new file: adopted, and refreshed again when due.
        yield* TokenFile.write(tokenFile, yield* login)
        yield* refresher.wake
        yield* settle(refresher, (s, now) => s.status === "ok" && Refresher.servable(s, now), "the new login")
        yield* TestClock.adjust("330 minutes")
        yield* settle(refresher, (s, now) => caughtUp(s, now) && s.lastRefreshAt !== undefined, "refreshed again")
        const after = yield* refreshes
        assert.strictEqual(after.length, attempts + 1)
        assert.strictEqual(after.at(-1)!.outcome, "refreshed")
      }).pipe(Effect.provide(TestLayer)),
    { timeout: 60_000 }
  )
})
