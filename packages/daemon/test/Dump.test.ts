// `strava-auth dump | strava-auth restore`: a grant moved between two installations ("machines") through a
// pipe. The dump is a move (the source sets its file aside and its daemon stops refreshing) unless --copy;
// never to a terminal without --force; restore writes the file atomically, 0600, and never over another grant
// without --force.
import { execFileSync, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"

import { assert, describe, it } from "@effect/vitest"
import { MockServer } from "@strava-auth/testing"
import * as Effect from "effect/Effect"

import { bin, daemon, eventually, login, run, sandbox, socketGet } from "./harness.js"

/** `dump` on one side piped into `restore` on the other, as two processes joined by a pipe. */
const pipe = (from: Record<string, string>, dumpArgs: ReadonlyArray<string>, to: Record<string, string>) =>
  Effect.promise(() =>
    new Promise<{ dump: { code: number | null; stderr: string }; restore: { code: number | null; stderr: string } }>(
      (resolve) => {
        const dump = spawn(process.execPath, [bin, "dump", ...dumpArgs], {
          env: from,
          stdio: ["ignore", "pipe", "pipe"]
        })
        const restore = spawn(process.execPath, [bin, "restore"], { env: to, stdio: ["pipe", "ignore", "pipe"] })
        dump.stdout.pipe(restore.stdin)
        let dumpErr = ""
        let restoreErr = ""
        dump.stderr.on("data", (d) => (dumpErr += d))
        restore.stderr.on("data", (d) => (restoreErr += d))
        let dumped: number | null | undefined
        let restored: number | null | undefined
        const done = () => {
          if (dumped !== undefined && restored !== undefined) {
            resolve({ dump: { code: dumped, stderr: dumpErr }, restore: { code: restored, stderr: restoreErr } })
          }
        }
        dump.once("exit", (code) => ((dumped = code), done()))
        restore.once("exit", (code) => ((restored = code), done()))
      }
    )
  )

const mode = (path: string) => Fs.statSync(path).mode & 0o777

describe("dump and restore", () => {
  it.scopedLive(
    "a move: the grant arrives whole (0600) and works there; the source sets its file aside and its daemon stops",
    () =>
      Effect.gen(function*() {
        const { server } = yield* MockServer.make()
        const a = sandbox(server)
        const b = sandbox(server)
        yield* login(a, server)
        yield* daemon(a)
        const original = Fs.readFileSync(a.tokenFile, "utf8")
        const { dump, restore } = yield* pipe(a.env, [], b.env)
        assert.strictEqual(dump.code, 0, dump.stderr)
        assert.strictEqual(restore.code, 0, restore.stderr)
        assert.include(dump.stderr, "Moved: the grant was written to stdout whole")
        // There: the same grant, a private file; it refreshes at Strava.
        const moved = JSON.parse(Fs.readFileSync(b.tokenFile, "utf8"))
        const before = JSON.parse(original)
        assert.strictEqual(moved.refresh_token, before.refresh_token)
        assert.strictEqual(moved.access_token, before.access_token)
        assert.strictEqual(mode(b.tokenFile), 0o600)
        const refreshed = yield* run(["refresh", "--local"], b.env)
        assert.strictEqual(refreshed.code, 0, refreshed.stderr)
        // Here: no token file (set aside, kept whole); the daemon waits for a login.
        assert.isFalse(Fs.existsSync(a.tokenFile))
        const aside = Fs.readdirSync(Path.dirname(a.tokenFile)).filter((f) => f.startsWith("token.json.moved-"))
        assert.strictEqual(aside.length, 1)
        assert.strictEqual(Fs.readFileSync(Path.join(Path.dirname(a.tokenFile), aside[0]!), "utf8"), original)
        yield* eventually(
          async () => {
            const reply = await socketGet(a.socket, "/health")
            return reply._tag === "Reply" && JSON.parse(reply.body).status === "needs_login" || undefined
          },
          10_000,
          "the source daemon to stop serving the grant"
        )
      }),
    30_000
  )

  it.scopedLive(
    "--copy keeps the grant here; restore refuses to replace a grant without --force",
    () =>
      Effect.gen(function*() {
        const { server } = yield* MockServer.make()
        const a = sandbox(server)
        const b = sandbox(server)
        yield* login(a, server)
        const first = yield* pipe(a.env, ["--copy"], b.env)
        assert.strictEqual(first.restore.code, 0, first.restore.stderr)
        assert.include(first.dump.stderr, "Copied")
        assert.isTrue(Fs.existsSync(a.tokenFile))
        // Again into the same place: refused, the file there untouched.
        const there = Fs.readFileSync(b.tokenFile, "utf8")
        const again = yield* pipe(a.env, ["--copy"], b.env)
        assert.strictEqual(again.restore.code, 64)
        assert.include(again.restore.stderr, "is there already")
        assert.strictEqual(Fs.readFileSync(b.tokenFile, "utf8"), there)
        const replaced = yield* run(["restore", "--force"], b.env, Fs.readFileSync(a.tokenFile, "utf8"))
        assert.strictEqual(replaced.code, 0, replaced.stderr)
        // --token-file on both sides.
        const elsewhere = Path.join(b.dir, "other", "token.json")
        const toFile = yield* run(["restore", "--token-file", elsewhere], b.env, Fs.readFileSync(a.tokenFile, "utf8"))
        assert.strictEqual(toFile.code, 0, toFile.stderr)
        assert.strictEqual(mode(elsewhere), 0o600)
        const fromFile = yield* run(["dump", "--copy", "--token-file", elsewhere], b.env)
        assert.strictEqual(
          JSON.parse(fromFile.stdout).refresh_token,
          JSON.parse(Fs.readFileSync(elsewhere, "utf8")).refresh_token
        )
        // Garbage and nothing on stdin: usage errors, no file written.
        const garbage = Path.join(b.dir, "garbage", "token.json")
        assert.strictEqual((yield* run(["restore", "--token-file", garbage], b.env, "not a grant")).code, 78)
        assert.strictEqual((yield* run(["restore", "--token-file", garbage], b.env, "")).code, 64)
        assert.isFalse(Fs.existsSync(garbage))
      }),
    30_000
  )

  it.scopedLive("dump refuses to write to a terminal without --force, and moves nothing", () =>
    Effect.gen(function*() {
      const { server } = yield* MockServer.make()
      const a = sandbox(server)
      yield* login(a, server)
      const onTerminal = (args: ReadonlyArray<string>) => {
        try {
          return {
            code: 0,
            out: execFileSync(
              "python3",
              [
                "-c",
                "import os, pty, sys; sys.exit(os.waitstatus_to_exitcode(pty.spawn(sys.argv[1:])))",
                process.execPath,
                bin,
                "dump",
                ...args
              ],
              { env: a.env, encoding: "utf8" }
            )
          }
        } catch (error) {
          const e = error as { status: number; stdout: string }
          return { code: e.status, out: e.stdout }
        }
      }
      const refused = onTerminal([])
      assert.strictEqual(refused.code, 64)
      assert.include(refused.out, "refusing to write the grant")
      assert.isTrue(Fs.existsSync(a.tokenFile))
      const forced = onTerminal(["--force", "--copy"])
      assert.strictEqual(forced.code, 0, forced.out)
      assert.include(forced.out, "refresh_token")
    }), 30_000)
})
