// A full disk never costs a grant: the space for the answer is reserved under the lock before Strava is asked
// (the hardening issue's "Disk full + a crash loses the grant"). Runs the real command on a real, tiny tmpfs.
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"

import { assert, describe, it } from "@effect/vitest"
import { MockServer } from "@strava-auth/testing"
import * as Effect from "effect/Effect"
import { onTestFinished } from "vitest"

import { login, run, sandbox } from "./harness.js"

// Mounting a tmpfs needs root; CI runs as root, so there the test always runs.
const canMount = process.getuid?.() === 0
const skip = !canMount && process.env["CI"] !== "true"

const mountTiny = (dir: string) => {
  Fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
  const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", dir], { encoding: "utf8" })
  if (mounted.status !== 0) throw new Error(`cannot mount a tmpfs at ${dir}: ${mounted.stderr}`)
  onTestFinished(() => void spawnSync("umount", ["-l", dir]))
}

/** Fills the filesystem of `dir`, leaving one page free: room for the lock, none for an answer. */
const fill = (dir: string) => {
  const filler = Fs.openSync(Path.join(dir, "filler"), "w")
  const chunk = Buffer.alloc(1024)
  try {
    for (;;) Fs.writeSync(filler, chunk)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error
  }
  try {
    for (;;) Fs.writeSync(filler, Buffer.alloc(1))
  } catch {
    // full to the byte
  } finally {
    Fs.ftruncateSync(filler, Fs.fstatSync(filler).size - 4096)
    Fs.closeSync(filler)
  }
}

describe("a full disk", () => {
  it.live.skipIf(skip)(
    `refuses to refresh before asking Strava, so the grant survives${skip ? " [skipped: needs root]" : ""}`,
    () =>
      Effect.scoped(Effect.gen(function*() {
        const { mock, server } = yield* MockServer.make()
        const box = sandbox(server)
        const state = Path.dirname(box.tokenFile)
        mountTiny(state)
        const logged = yield* login(box, server)
        assert.strictEqual(logged.result.code, 0, logged.result.stderr)
        const before = Fs.readFileSync(box.tokenFile, "utf8")
        fill(state)

        const refreshed = yield* run(["refresh", "--local"], box.env)
        const asked = (yield* mock.log).filter((entry) => entry.grantType === "refresh_token")

        assert.notStrictEqual(refreshed.code, 0)
        assert.include(refreshed.stderr, "cannot reserve the space to save a refresh")
        assert.strictEqual(asked.length, 0, "Strava was asked although the answer could not have been saved")
        assert.strictEqual(Fs.readFileSync(box.tokenFile, "utf8"), before)
        // The grant in the file is still the one Strava accepts.
        assert.strictEqual(JSON.parse(before).refresh_token, yield* mock.liveRefreshToken())

        // Space again: the same command refreshes.
        Fs.rmSync(Path.join(state, "filler"))
        const again = yield* run(["refresh", "--local"], box.env)
        assert.strictEqual(again.code, 0, again.stderr)
        assert.strictEqual(
          JSON.parse(Fs.readFileSync(box.tokenFile, "utf8")).refresh_token,
          yield* mock.liveRefreshToken()
        )
      }))
  )
})
