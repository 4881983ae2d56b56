// Bad files and bad settings, through the real command (the hardening issue's "A full disk, bad files, bad
// settings"): a FIFO or a link at the token path, a lock that is a link to /dev/zero, absurd durations.
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"

import { assert, describe, it } from "@effect/vitest"
import { MockServer } from "@strava-auth/testing"
import * as Effect from "effect/Effect"

import { login, run, sandbox } from "./harness.js"

const noStackTrace = (stderr: string) => assert.notMatch(stderr, /\n\s+at /, "a stack trace was printed")

describe("bad files", () => {
  it.live(
    "a FIFO at the token path is refused at once, not opened (no hang), by token and by status",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const { server } = yield* MockServer.make()
        const box = sandbox(server)
        Fs.mkdirSync(Path.dirname(box.tokenFile), { recursive: true, mode: 0o700 })
        spawnSync("mkfifo", ["-m", "600", box.tokenFile])
        assert.isTrue(Fs.lstatSync(box.tokenFile).isFIFO())
        const token = yield* run(["token"], box.env)
        assert.strictEqual(token.code, 78, token.stderr)
        assert.include(token.stderr, "not a regular file")
        const status = yield* run(["status"], box.env)
        assert.strictEqual(status.code, 78, status.stderr)
        noStackTrace(token.stderr)
      })),
    20_000
  )

  it.live(
    "a symbolic link at the token path is refused without advising a chmod through it",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const { server } = yield* MockServer.make()
        const box = sandbox(server)
        Fs.mkdirSync(Path.dirname(box.tokenFile), { recursive: true, mode: 0o700 })
        Fs.symlinkSync("/dev/zero", box.tokenFile)
        const token = yield* run(["token"], box.env)
        assert.strictEqual(token.code, 78, token.stderr)
        assert.include(token.stderr, "symbolic link")
        assert.notInclude(token.stderr, "chmod")
        assert.strictEqual(Fs.statSync("/dev/zero").mode & 0o777, 0o666) // untouched
      })),
    20_000
  )

  it.live(
    "a refresh lock that is a link to /dev/zero is refused, never read (bounded memory, no hang)",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const { mock, server } = yield* MockServer.make()
        const box = sandbox(server)
        assert.strictEqual((yield* login(box, server)).result.code, 0)
        Fs.symlinkSync("/dev/zero", `${box.tokenFile}.lock`)
        const refreshed = yield* run(["refresh", "--local"], box.env)
        assert.strictEqual(refreshed.code, 78, refreshed.stderr)
        assert.include(refreshed.stderr, "symbolic link")
        assert.strictEqual((yield* mock.log).filter((e) => e.grantType === "refresh_token").length, 0)
        // a FIFO there: refused too, at once
        Fs.rmSync(`${box.tokenFile}.lock`)
        spawnSync("mkfifo", ["-m", "600", `${box.tokenFile}.lock`])
        const again = yield* run(["refresh", "--local"], box.env)
        assert.strictEqual(again.code, 78, again.stderr)
        assert.include(again.stderr, "not a regular file")
      })),
    30_000
  )
})

describe("text from outside on the terminal", () => {
  it.live(
    "status prints an athlete's name with terminal escape sequences stripped",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const { server } = yield* MockServer.make()
        const box = sandbox(server)
        assert.strictEqual((yield* login(box, server)).result.code, 0)
        const file = JSON.parse(Fs.readFileSync(box.tokenFile, "utf8"))
        file.athlete.firstname = "\u001b]0;owned\u0007Mari\u001b[2J\u001b[31manne\u009b1A"
        file.athlete.lastname = "Mock\r\u0000"
        Fs.writeFileSync(box.tokenFile, JSON.stringify(file), { mode: 0o600 })
        const status = yield* run(["status"], box.env)
        assert.include(status.stdout, "Marianne Mock")

        assert.notMatch(status.stdout, /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/)
      })),
    20_000
  )
})

describe("bad settings", () => {
  for (const margin of ["200000000d", "100000000d", "7h", "0s"]) {
    it.live(
      `--refresh-margin ${margin} is a configuration error (exit 78), not a crash or a date in year -271764`,
      () =>
        Effect.scoped(Effect.gen(function*() {
          const { server } = yield* MockServer.make()
          const box = sandbox(server)
          for (const command of ["token", "daemon"]) {
            const result = yield* run([command, "--refresh-margin", margin], box.env)
            assert.strictEqual(result.code, 78, result.stderr)
            assert.include(result.stderr, "STRAVA_AUTH_REFRESH_MARGIN")
            noStackTrace(result.stderr)
          }
        })),
      20_000
    )
  }

  it.live("login --timeout beyond a day is bad usage (exit 64)", () =>
    Effect.scoped(Effect.gen(function*() {
      const { server } = yield* MockServer.make()
      const box = sandbox(server)
      const result = yield* run(["login", "--no-browser", "--timeout", "100000000d"], box.env)
      assert.strictEqual(result.code, 64, result.stderr)
      assert.include(result.stderr, "--timeout")
      noStackTrace(result.stderr)
    })), 20_000)
})
