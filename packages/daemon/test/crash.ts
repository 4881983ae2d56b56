// Crash consistency: kill -9 the real daemon at random moments during a burst of forced refreshes against
// the mock, then check the token file. Shared by the two CrashConsistency test files (run in parallel).
import * as Fs from "node:fs"
import * as Path from "node:path"

import { assert, describe, it } from "@effect/vitest"
import { MockServer } from "@strava-auth/testing"
import * as Effect from "effect/Effect"

import * as TokenFile from "../src/TokenFile.js"
import { eventually, login, type Sandbox, sandbox, socketGet, start } from "./harness.js"

export interface Tally {
  kills: number
  /** Refreshes Strava (the mock) answered during the bursts. */
  refreshes: number
  /** After the kill, the file's refresh token was the live one at the mock. */
  live: number
  /**
   * The file held the refresh token of the last request Strava answered, not the live one: the rotation was
   * lost between Strava's answer and the write. Counted (it must stay 0: the refresh runs in a helper process
   * that the kill does not reach), and followed by a new login so the run can go on.
   */
  lostInFlight: number
}

const startDaemon = (box: Sandbox) =>
  Effect.gen(function*() {
    const child = start(["daemon"], box.env)
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
    yield* eventually(
      async () => {
        if (child.exitCode !== null) throw new Error("the daemon exited at start")
        const reply = await socketGet(box.socket, "/health")
        return reply._tag === "Reply" ? true : undefined
      },
      15_000,
      "the daemon's socket"
    )
    return { child, exited }
  })

/** Runs `kills` kill -9 cycles; every check failure throws with the cycle's story. */
export const crashes = (kills: number, seed: number) =>
  Effect.scoped(Effect.gen(function*() {
    // Every refresh mints and rotates: the one-hour threshold is longer than the lifetime.
    const { mock, server } = yield* MockServer.make({ refreshThresholdMillis: 7 * 3_600_000 })
    const box = sandbox(server)
    let random = seed
    const next = () => (random = (random * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
    yield* login(box, server)
    const tally: Tally = { kills: 0, refreshes: 0, live: 0, lostInFlight: 0 }
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
      // once the burst is under way (Strava has answered a refresh), a random moment within the next 40 ms
      yield* eventually(
        async () => {
          const log = await Effect.runPromise(mock.log)
          return log.slice(before).some((e) => e.grantType === "refresh_token") ? true : undefined
        },
        15_000,
        "the first refresh of the burst"
      )
      yield* Effect.promise(() => new Promise((r) => setTimeout(r, Math.floor(next() * 40))))
      child.kill("SIGKILL")
      yield* Effect.promise(() => exited)
      running = false
      yield* Effect.promise(() => burst)
      tally.kills++

      // The daemon's refresh helper outlives it: let it finish (it holds the lock until the file is written).
      yield* eventually(async () => (Fs.existsSync(`${box.tokenFile}.lock`) ? undefined : true), 15_000, "the helper")

      // The file parses (never truncated or mixed), whatever the moment of the kill.
      const text = Fs.readFileSync(box.tokenFile, "utf8")
      const tokens = yield* TokenFile.decode(box.tokenFile, text)
      const inFile = JSON.parse(text).refresh_token as string
      const log = (yield* mock.log).slice(before).filter((e) => e.grantType === "refresh_token")
      tally.refreshes += log.filter((e) => e.outcome === "refreshed").length
      const live = yield* mock.liveRefreshToken()
      if (inFile === live) {
        tally.live++
        continue
      }
      // Not live: it must be the token of the very last refresh Strava answered (the kill hit the window
      // between its answer and our fsync), never an older one: a persisted rotation is never lost.
      const last = log.at(-1)
      if (last === undefined || last.refreshToken !== inFile || last.outcome !== "refreshed") {
        throw new Error(
          `kill ${tally.kills}: the file's refresh token is neither live nor the last one Strava rotated ` +
            `(last request: ${JSON.stringify(last?.outcome)})`
        )
      }
      void tokens
      tally.lostInFlight++
      // the grant is gone: log in again to go on
      Fs.rmSync(box.tokenFile, { force: true })
      yield* login(box, server)
    }
    // No temp files accumulate: each start removes what a killed writer left.
    const left = Fs.readdirSync(Path.dirname(box.tokenFile)).filter((n) => n.endsWith(".tmp"))
    assertAtMostOne(left)
    return tally
  }))

const assertAtMostOne = (left: ReadonlyArray<string>) => {
  if (left.length > 1) throw new Error(`temp files accumulate: ${left.join(", ")}`)
}

/** The suite: `kills` kill -9 cycles with a seed (two files run it in parallel, half each). */
export const crashSuite = (part: string, kills: number, seed: number) =>
  describe(`crash consistency (${part})`, () => {
    it.live(
      `${kills} kill -9 during forced refreshes: the file always parses and no grant is ever lost`,
      () =>
        Effect.gen(function*() {
          const tally = yield* crashes(kills, seed)
          console.log(`crash consistency ${part}: ${JSON.stringify(tally)}`)
          assert.strictEqual(tally.kills, kills)
          assert.strictEqual(tally.live + tally.lostInFlight, tally.kills)
          assert.isAtLeast(tally.refreshes, tally.kills) // every kill landed in a burst of refreshes
          assert.isAbove(tally.live, 0)
        }),
      { timeout: 240_000 }
    )
  })
