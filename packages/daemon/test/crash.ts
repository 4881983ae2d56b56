// Crash consistency: kill -9 the real daemon at random moments while its refresh helper waits for Strava (the
// mock answers token requests late), during a burst of forced refreshes, then check the token file. Shared by the
// two CrashConsistency test files (run in parallel).
import * as Fs from "node:fs"
import * as Path from "node:path"

import { assert, describe, it } from "@effect/vitest"
import { MockServer } from "@strava-auth/testing"
import * as Effect from "effect/Effect"

import * as TokenFile from "../src/TokenFile.js"
import { login, type Sandbox, sandbox, socketGet, start } from "./harness.js"
import { helpersOf, killHelpersAtEnd } from "./processes.js"

export interface Tally {
  kills: number
  /** Refreshes Strava (the mock) answered during the bursts. */
  refreshes: number
  /** Kills that landed while a refresh helper for the token file was running (waiting for Strava's answer). */
  withHelper: number
  /**
   * Kills after which the grant was lost: once the daemon's refresh helper (if any) had finished, the token
   * file's refresh token was not the one Strava (the mock) holds live. Counted from the file and the mock alone;
   * the headline is that it stays 0. A loss is followed by a new login so the run goes on and the count is complete.
   */
  lost: number
  /** What each loss looked like (the last request Strava answered), for the failure message. */
  stories: Array<string>
}

/** Polls `check` every 20 ms until it returns a value, or fails after `millis` (the cycles are timed tightly). */
const poll = <A>(check: () => Promise<A | undefined>, millis: number, what: string) =>
  Effect.promise(async () => {
    const until = Date.now() + millis
    for (;;) {
      const value = await check()
      if (value !== undefined) return value
      if (Date.now() > until) throw new Error(`timed out after ${millis} ms waiting for ${what}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  })

/** Waits (bounded) until no refresh helper runs for the sandbox: a killed daemon's helper finishes on its own. */
const helpersDone = (box: Sandbox) =>
  poll(async () => (helpersOf(box.tokenFile).length === 0 ? true : undefined), 20_000, "the helpers to finish")

const startDaemon = (box: Sandbox) =>
  Effect.gen(function*() {
    const child = start(["daemon"], box.env)
    let stderr = ""
    child.stderr!.on("data", (d: string) => (stderr += d))
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
    yield* poll(
      async () => {
        if (child.exitCode !== null) {
          throw new Error(`the daemon exited at start (${child.exitCode}): ${stderr.slice(-2000)}`)
        }
        const reply = await socketGet(box.socket, "/health")
        return reply._tag === "Reply" ? true : undefined
      },
      15_000,
      "the daemon's socket"
    )
    return { child, exited }
  })

/** How late Strava (the mock) answers every token request. */
const slowMillis = 200

/** Runs `kills` kill -9 cycles; every check failure throws with the cycle's story. */
export const crashes = (kills: number, seed: number) =>
  Effect.scoped(Effect.gen(function*() {
    // Every refresh mints and rotates: the one-hour threshold is longer than the lifetime.
    const { mock, server } = yield* MockServer.make({ refreshThresholdMillis: 7 * 3_600_000 })
    const box = sandbox(server)
    yield* killHelpersAtEnd(box.tokenFile)
    let random = seed
    const next = () => (random = (random * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
    yield* login(box, server)
    const tally: Tally = { kills: 0, refreshes: 0, withHelper: 0, lost: 0, stories: [] }
    // Since forced refreshes are coalesced, a burst makes about one refresh per daemon run: Strava answers it
    // late, so that the kill lands while the daemon's helper waits for the answer (Strava has already rotated).
    const injected = yield* Effect.promise(() =>
      fetch(`${server.url}/_mock/faults`, {
        method: "POST",
        body: JSON.stringify({
          endpoint: "token",
          fault: { _tag: "Slow", millis: slowMillis },
          when: { probability: 1 }
        })
      })
    )
    assert.strictEqual(injected.status, 200)
    while (tally.kills < kills) {
      const before = (yield* mock.log).length
      const { child, exited } = yield* startDaemon(box)
      let running = true
      const burst = (async () => {
        while (running) {
          const reply = await socketGet(box.socket, "/refresh", "POST")
          if (reply._tag === "Down") return
        }
      })()
      // once Strava has the burst's refresh (and answers it slowly), a random moment within the first half of the delay
      yield* poll(
        async () => {
          const log = await Effect.runPromise(mock.log)
          return log.slice(before).some((e) => e.grantType === "refresh_token") ? true : undefined
        },
        15_000,
        "the first refresh of the burst"
      )
      yield* Effect.promise(() => new Promise((r) => setTimeout(r, Math.floor(next() * slowMillis / 2))))
      child.kill("SIGKILL")
      // A helper alive now was started by the daemon before the kill: the kill landed while it ran.
      if (helpersOf(box.tokenFile).length > 0) tally.withHelper++
      yield* Effect.promise(() => exited)
      running = false
      yield* Effect.promise(() => burst)
      tally.kills++

      // The daemon's refresh helper outlives it: let it finish its refresh and write.
      yield* helpersDone(box)

      // The file parses (never truncated or mixed), whatever the moment of the kill.
      const text = Fs.readFileSync(box.tokenFile, "utf8")
      yield* TokenFile.decode(box.tokenFile, text)
      const inFile = JSON.parse(text).refresh_token as string
      const log = (yield* mock.log).slice(before).filter((e) => e.grantType === "refresh_token")
      tally.refreshes += log.filter((e) => e.outcome.startsWith("refreshed")).length
      if (inFile === (yield* mock.liveRefreshToken())) continue
      // Lost: Strava holds a refresh token the file does not.
      const last = log.at(-1)
      tally.lost++
      tally.stories.push(
        `kill ${tally.kills}: the file's refresh token is not the live one; the last refresh Strava answered ` +
          `${last?.refreshToken === inFile ? "presented the file's token" : "presented another token"} ` +
          `(${JSON.stringify(last?.outcome)})`
      )
      // the grant is gone: log in again to go on
      Fs.rmSync(box.tokenFile, { force: true })
      yield* login(box, server)
    }
    // After all the kills, and every helper finished: the file holds the live grant.
    yield* helpersDone(box)
    const final = JSON.parse(Fs.readFileSync(box.tokenFile, "utf8")).refresh_token as string
    if (final !== (yield* mock.liveRefreshToken())) {
      tally.lost++
      tally.stories.push("after the last kill: the file's refresh token is not the live one")
    }
    // No temp files accumulate: each start removes what a killed writer left.
    const left = Fs.readdirSync(Path.dirname(box.tokenFile)).filter((n) => n.endsWith(".tmp"))
    assertAtMostOne(left)
    return tally
  }))

const assertAtMostOne = (left: ReadonlyArray<string>) => {
  if (left.length > 1) throw new Error(`temp files accumulate: ${left.join(", ")}`)
}

/** `STRAVA_AUTH_CRASH_KILLS` overrides the number of kills per file (fewer while developing). */
const killsFromEnv = (kills: number): number => {
  const value = Number(process.env["STRAVA_AUTH_CRASH_KILLS"])
  return Number.isInteger(value) && value > 0 ? value : kills
}

/** The suite: `kills` kill -9 cycles with a seed (two files run it in parallel, half each). */
export const crashSuite = (part: string, defaultKills: number, seed: number) => {
  const kills = killsFromEnv(defaultKills)
  return describe(`crash consistency (${part})`, () => {
    it.live(
      `${kills} kill -9 while a refresh helper waits for Strava: the file always parses and no grant is ever lost`,
      () =>
        Effect.gen(function*() {
          const tally = yield* crashes(kills, seed)
          console.log(`crash consistency ${part}: ${JSON.stringify({ ...tally, stories: tally.stories.length })}`)
          assert.strictEqual(tally.kills, kills)
          assert.isAtLeast(tally.refreshes, tally.kills) // every kill landed in a burst of refreshes
          assert.strictEqual(tally.withHelper, tally.kills, "a kill landed when no refresh helper was running")
          assert.strictEqual(tally.lost, 0, tally.stories.join("\n"))
        }),
      // About 1.5 s a kill on a quiet machine (a daemon start, a refresh 200 ms slow, a kill, a wait for the helper).
      { timeout: Math.max(240_000, kills * 4_000) }
    )
  })
}
