// `strava-auth exec -- CMD ARGS...`: CMD runs with the token in STRAVA_ACCESS_TOKEN, gets the signals
// strava-auth gets, and its exit status is strava-auth's; a new token restarts it, signals it, or not
// (--on-change).
import * as Fs from "node:fs"
import * as Path from "node:path"

import { assert, describe, it } from "@effect/vitest"
import { MockServer } from "@strava-auth/testing"
import * as Effect from "effect/Effect"

import { collect, daemon, eventually, login, run, sandbox, socketGet, start, tempDir } from "./harness.js"

/** A child that appends `<event> <token>` lines to `log` on start and on the signals it is sent. */
const childScript = (log: string) => `
const fs = require("fs")
const line = (what) => fs.appendFileSync(${JSON.stringify(log)}, what + " " + process.env.STRAVA_ACCESS_TOKEN + "\\n")
line("start")
process.on("SIGHUP", () => line("hup"))
process.on("SIGTERM", () => { line("term"); process.exit(3) })
setInterval(() => {}, 1000)
`

const lines = (log: string) => Fs.existsSync(log) ? Fs.readFileSync(log, "utf8").trim().split("\n") : []

describe("strava-auth exec", () => {
  it.scopedLive("CMD gets the token in STRAVA_ACCESS_TOKEN; its exit status is exec's", () =>
    Effect.gen(function*() {
      const { server } = yield* MockServer.make()
      const box = sandbox(server)
      yield* login(box, server)
      const token = JSON.parse(Fs.readFileSync(box.tokenFile, "utf8")).access_token as string
      const result = yield* run(
        [
          "exec",
          "--",
          process.execPath,
          "-e",
          "process.stdout.write(process.env.STRAVA_ACCESS_TOKEN); process.exit(7)"
        ],
        box.env
      )
      assert.strictEqual(result.code, 7, result.stderr)
      assert.strictEqual(result.stdout, token)
      // Not on exec's own argv: the token is in CMD's environment only.
      const missing = yield* run(["exec", "--", "/nonexistent/command"], box.env)
      assert.strictEqual(missing.code, 127)
      assert.include(missing.stderr, "cannot run /nonexistent/command")
      // No token: exec does not start CMD, and says to log in.
      const noLogin = yield* run(["exec", "--token-file", Path.join(box.dir, "none.json"), "--", "true"], box.env)
      assert.strictEqual(noLogin.code, 77)
    }), 30_000)

  it.scopedLive("signals pass through to CMD, and exec exits with CMD's status", () =>
    Effect.gen(function*() {
      const { server } = yield* MockServer.make()
      const box = sandbox(server)
      yield* login(box, server)
      const log = Path.join(tempDir("exec-"), "log")
      const child = start(["exec", "--", process.execPath, "-e", childScript(log)], box.env)
      const done = collect(child)
      yield* eventually(async () => lines(log).length >= 1 || undefined, 10_000, "CMD to start")
      child.kill("SIGHUP")
      yield* eventually(async () => lines(log).some((l) => l.startsWith("hup")) || undefined, 10_000, "the HUP")
      child.kill("SIGTERM")
      const result = yield* Effect.promise(() => done)
      assert.strictEqual(result.code, 3, result.stderr)
      assert.deepStrictEqual(lines(log).map((l) => l.split(" ")[0]), ["start", "hup", "term"])
    }), 30_000)

  for (const [onChange, expected] of [["restart", "start"], ["signal:HUP", "hup"]] as const) {
    it.scopedLive(`a new token: --on-change ${onChange}`, () =>
      Effect.gen(function*() {
        const { mock, server } = yield* MockServer.make()
        const box = sandbox(server)
        yield* login(box, server)
        yield* daemon(box)
        const log = Path.join(tempDir("exec-"), "log")
        const child = start(["exec", "--on-change", onChange, "--", process.execPath, "-e", childScript(log)], box.env)
        yield* eventually(async () => lines(log).length >= 1 || undefined, 10_000, "CMD to start")
        // The daemon refreshes and Strava mints a new token (less than an hour left, as Strava sees it).
        yield* mock.expireAccessTokens("30 minutes")
        yield* Effect.promise(() => socketGet(box.socket, "/refresh", "POST"))
        const fresh = JSON.parse(Fs.readFileSync(box.tokenFile, "utf8")).access_token as string
        yield* eventually(
          async () => lines(log).find((l) => l.startsWith(`${expected} `) && lines(log).indexOf(l) > 0),
          25_000,
          `CMD to hear of the new token (${expected})`
        )
        const after = lines(log).slice(1)
        if (onChange === "restart") {
          // the old one was stopped, the new one has the new token
          assert.deepStrictEqual(after.map((l) => l.split(" ")[0]), ["term", "start"])
          assert.strictEqual(after[1], `start ${fresh}`)
        } else {
          assert.deepStrictEqual(after.map((l) => l.split(" ")[0]), ["hup"])
        }
        child.kill("SIGTERM")
      }), 40_000)
  }

  it.scopedLive(
    "--on-change none: nothing happens to CMD on a new token; bad usage is 64",
    () =>
      Effect.gen(function*() {
        const { mock, server } = yield* MockServer.make()
        const box = sandbox(server)
        yield* login(box, server)
        yield* daemon(box)
        const log = Path.join(tempDir("exec-"), "log")
        const child = start(["exec", "--on-change", "none", "--", process.execPath, "-e", childScript(log)], box.env)
        yield* eventually(async () => lines(log).length >= 1 || undefined, 10_000, "CMD to start")
        yield* mock.expireAccessTokens("30 minutes")
        yield* Effect.promise(() => socketGet(box.socket, "/refresh", "POST"))
        yield* Effect.sleep("3 seconds") // the file changed: exec checked at once, and did nothing
        assert.strictEqual(lines(log).length, 1)
        child.kill("SIGTERM")
        for (
          const args of [["exec"], ["exec", "true"], ["exec", "--on-change", "reboot", "--", "true"], [
            "exec",
            "--on-change",
            "signal:NOPE",
            "--",
            "true"
          ]]
        ) {
          const result = yield* run(args, box.env)
          assert.strictEqual(result.code, 64, args.join(" "))
          assert.include(result.stderr, "strava-auth exec")
        }
      }),
    30_000
  )
})
