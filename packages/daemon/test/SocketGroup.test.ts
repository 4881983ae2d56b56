// --socket-group: the members of a group may use the daemon's socket (0660, its directory 0750, that group);
// nobody else can. The clients are real processes of another user (nobody), one in the group and one not.
// Root only (a child of another uid); the directory is under /tmp, which that user can traverse.
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"

import { assert, describe, it, onTestFinished } from "@effect/vitest"
import { MockServer } from "@strava-auth/testing"
import * as Effect from "effect/Effect"

import { daemon, login, run, sandbox } from "./harness.js"

const isRoot = process.getuid?.() === 0
const groupOf = (name: string) =>
  Number(Fs.readFileSync("/etc/group", "utf8").split("\n").find((l) => l.startsWith(`${name}:`))?.split(":")[2])
const nobody = 65534

/** Connects to the socket as `nobody` with group `gid`; `connected` or the error's code. */
const connectAs = (socket: string, gid: number) =>
  spawnSync(
    process.execPath,
    [
      "-e",
      `require("net").connect(${
        JSON.stringify(socket)
      }).on("connect", () => { process.stdout.write("connected"); process.exit(0) })` +
      `.on("error", (e) => { process.stdout.write(e.code); process.exit(1) })`
    ],
    { uid: nobody, gid, encoding: "utf8", cwd: "/" }
  ).stdout

describe.skipIf(!isRoot)("--socket-group", () => {
  it.scopedLive(
    "a member of the group may use the socket; another user may not; the modes are 0660 and 0750",
    () =>
      Effect.gen(function*() {
        const { server } = yield* MockServer.make()
        const box = sandbox(server)
        yield* login(box, server)
        // A directory another user can pass through (the run's own temp directory is 0700).
        const shared = Fs.mkdtempSync("/tmp/strava-auth-group-")
        Fs.chmodSync(shared, 0o711)
        onTestFinished(() => Fs.rmSync(shared, { recursive: true, force: true }))
        const socket = Path.join(shared, "run", "token.sock")
        const users = groupOf("users")
        const others = groupOf("nogroup")
        assert.isTrue(Number.isInteger(users) && Number.isInteger(others))

        yield* Effect.scoped(Effect.gen(function*() {
          yield* daemon({ ...box, socket }, ["--socket", socket, "--socket-group", "users"])
          const sock = Fs.statSync(socket)
          const dir = Fs.statSync(Path.dirname(socket))
          assert.strictEqual(sock.mode & 0o777, 0o660)
          assert.strictEqual(sock.gid, users)
          assert.strictEqual(dir.mode & 0o777, 0o750)
          assert.strictEqual(dir.gid, users)
          assert.strictEqual(connectAs(socket, users), "connected")
          assert.strictEqual(connectAs(socket, others), "EACCES")
        }))
        // Without the flag: private again (0600, 0700 are what a new daemon makes of a directory it opens).
        Fs.rmSync(Path.dirname(socket), { recursive: true, force: true })
        yield* Effect.scoped(Effect.gen(function*() {
          yield* daemon({ ...box, socket }, ["--socket", socket])
          assert.strictEqual(Fs.statSync(socket).mode & 0o777, 0o600)
          assert.strictEqual(Fs.statSync(Path.dirname(socket)).mode & 0o777, 0o700)
          assert.strictEqual(connectAs(socket, users), "EACCES")
        }))
        // An unknown group: a configuration error that names it.
        const unknown = yield* run(["daemon", "--socket", socket, "--socket-group", "no-such-group-here"], box.env)
        assert.strictEqual(unknown.code, 78)
        assert.include(unknown.stderr, "no group \"no-such-group-here\"")
      }),
    30_000
  )
})
