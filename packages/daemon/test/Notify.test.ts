// systemd's notify protocol, against a real NOTIFY_SOCKET: a Unix datagram listener (python3, as systemd is
// one) that records every message the daemon sends through systemd-notify. READY=1 once the socket serves,
// STATUS lines, RELOADING=1/READY=1 around SIGHUP, STOPPING=1, and WATCHDOG=1 from the refresh loop, which
// stop while the loop is wedged. Without NOTIFY_SOCKET nothing is sent.
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"

import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { assert, describe, it } from "@effect/vitest"
import { MockServer, Simulator } from "@strava-auth/testing"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"

import * as TokenFile from "../src/TokenFile.js"
import { daemon, eventually, fakeOpener, login, sandbox, socketGet, tempDir } from "./harness.js"
import { requireTool } from "./tools.js"

const python = requireTool("python3", "python3")
const notify = requireTool("systemd-notify", "systemd")

const listenerScript = `
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print(json.dumps("listening"), flush=True)
while True:
    data = s.recv(65536)
    print(json.dumps(data.decode()), flush=True)
`

interface Message {
  readonly at: number
  readonly lines: ReadonlyArray<string>
}

/** A NOTIFY_SOCKET that records each datagram (its lines) with the time it arrived. */
const listener = (dir: string) =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<{ readonly path: string; readonly messages: Array<Message>; readonly child: ChildProcess }>(
        (resolve, reject) => {
          const path = Path.join(dir, "notify.sock")
          const messages: Array<Message> = []
          const child = spawn("python3", ["-c", listenerScript, path], { stdio: ["ignore", "pipe", "inherit"] })
          let buffer = ""
          child.stdout!.setEncoding("utf8")
          child.stdout!.on("data", (chunk: string) => {
            buffer += chunk
            let end: number
            while ((end = buffer.indexOf("\n")) >= 0) {
              const text = JSON.parse(buffer.slice(0, end)) as string
              buffer = buffer.slice(end + 1)
              if (text === "listening") resolve({ path, messages, child })
              else messages.push({ at: Date.now(), lines: text.split("\n").filter((l) => l !== "") })
            }
          })
          child.once("exit", (code) => reject(new Error(`the listener exited with ${code}`)))
        }
      )
    ),
    ({ child }) => Effect.sync(() => child.kill("SIGKILL"))
  )

const has = (messages: ReadonlyArray<Message>, line: string) => messages.filter((m) => m.lines.includes(line))

describe.skipIf(python.skip || notify.skip)(`systemd notify${python.note}${notify.note}`, () => {
  it.scopedLive(
    "READY=1 once the socket serves, STATUS, the watchdog's pings, RELOADING/READY on SIGHUP, STOPPING",
    () =>
      Effect.gen(function*() {
        const { server } = yield* MockServer.make()
        const box = sandbox(server)
        yield* login(box, server)
        const notifySocket = yield* listener(box.dir)
        const { child } = yield* Effect.scoped(Effect.gen(function*() {
          const started = yield* daemon({
            ...box,
            env: { ...box.env, NOTIFY_SOCKET: notifySocket.path, WATCHDOG_USEC: "400000" }
          })
          const ready = yield* eventually(async () => has(notifySocket.messages, "READY=1")[0], 10_000, "READY=1")
          assert.include(ready.lines, `MAINPID=${started.child.pid}`)
          assert.isTrue(
            ready.lines.some((l) => l.startsWith("STATUS=serving the token (expires ")),
            ready.lines.join("|")
          )
          // READY=1 comes once the socket answers: it answers by the time the message is here.
          assert.strictEqual((yield* Effect.promise(() => socketGet(box.socket, "/health")))._tag, "Reply")

          // The watchdog: WATCHDOG_USEC 0.4 s, so a ping every 0.2 s or so.
          const since = Date.now()
          yield* eventually(
            async () => has(notifySocket.messages, "WATCHDOG=1").filter((m) => m.at >= since).length >= 4 || undefined,
            10_000,
            "four watchdog pings"
          )

          // SIGHUP: RELOADING=1 (with MONOTONIC_USEC), then READY=1 again.
          const before = notifySocket.messages.length
          started.child.kill("SIGHUP")
          yield* eventually(
            async () => has(notifySocket.messages.slice(before), "READY=1")[0],
            10_000,
            "READY=1 after the reload"
          )
          const reload = notifySocket.messages.slice(before)
          const reloading = reload.findIndex((m) => m.lines.includes("RELOADING=1"))
          const readyAgain = reload.findIndex((m) => m.lines.includes("READY=1"))
          assert.isAtLeast(reloading, 0)
          assert.isAbove(readyAgain, reloading)
          assert.isTrue(reload[reloading]!.lines.some((l) => /^MONOTONIC_USEC=\d+$/.test(l)))
          return started
        }))
        // The scope stopped it with SIGTERM: STOPPING=1.
        yield* Effect.promise(() => new Promise((r) => child.exitCode !== null ? r(undefined) : child.once("exit", r)))
        yield* eventually(async () => has(notifySocket.messages, "STOPPING=1")[0], 10_000, "STOPPING=1")
      }),
    60_000
  )

  for (const accounts of [["default"], ["default", "club"]] as const) {
    const wedged = accounts.at(-1)!
    it.scopedLive(
      accounts.length === 1
        ? "a refresh loop wedged (on the token file's lock) stops the watchdog's pings; they resume after"
        : "two accounts, one loop wedged (club's, on its lock) while default's turns: no pings; they resume after",
      () =>
        Effect.gen(function*() {
          const { server } = yield* MockServer.make({
            athletes: [Simulator.defaultAthlete, { ...Simulator.defaultAthlete, id: 2002 }]
          })
          const box = sandbox(server)
          yield* login(box, server)
          if (wedged === "club") yield* login(box, server, { athleteId: 2002, args: ["--account", "club"] })
          const wedgedFile = wedged === "club"
            ? Path.join(Path.dirname(box.tokenFile), "accounts", "club.json")
            : box.tokenFile
          const notifySocket = yield* listener(box.dir)
          // Another process holds the wedged account's lock (this one), and the tokens are due: its loop's refresh
          // waits (the other account's loop refreshes and goes on turning).
          const holder = yield* Effect.fork(
            TokenFile.withLock(wedgedFile, Effect.never).pipe(Effect.provide(NodeFileSystem.layer))
          )
          yield* eventually(async () => Fs.existsSync(`${wedgedFile}.lock`) || undefined, 5000, "the lock")
          yield* daemon({
            ...box,
            env: {
              ...box.env,
              NOTIFY_SOCKET: notifySocket.path,
              WATCHDOG_USEC: "400000",
              STRAVA_AUTH_REFRESH_MARGIN: "6h"
            }
          })
          yield* eventually(async () => has(notifySocket.messages, "READY=1")[0], 10_000, "READY=1")
          if (wedged === "club") {
            // default's loop is free: it refreshed, and serves
            yield* eventually(
              async () => {
                const reply = await socketGet(box.socket, "/health")
                return reply._tag === "Reply" && JSON.parse(reply.body).last_refresh_at !== null ? true : undefined
              },
              10_000,
              "default's refresh"
            )
          }
          // Wedged: for two seconds (ten intervals), at most the one ping before the refresh began.
          const wedgedFrom = Date.now()
          yield* Effect.sleep("2 seconds")
          const during = has(notifySocket.messages, "WATCHDOG=1").filter((m) => m.at >= wedgedFrom + 300)
          assert.strictEqual(during.length, 0, `pings while wedged: ${during.length}`)
          // The lock is released: the refresh finishes and the pings resume.
          yield* Fiber.interrupt(holder)
          const releasedAt = Date.now()
          yield* eventually(
            async () =>
              has(notifySocket.messages, "WATCHDOG=1").filter((m) => m.at >= releasedAt).length >= 2 || undefined,
            20_000,
            "pings after the release"
          )
        }),
      60_000
    )
  }

  it.scopedLive("without NOTIFY_SOCKET nothing is sent: systemd-notify is never run", () =>
    Effect.gen(function*() {
      const { server } = yield* MockServer.make()
      const box = sandbox(server)
      yield* login(box, server)
      // A systemd-notify first on PATH that records being run.
      const dir = tempDir("notify-")
      const fake = fakeOpener(dir) // a bin directory with a recording script
      const recorder = Path.join(fake.bin, "systemd-notify")
      Fs.writeFileSync(recorder, `#!/bin/sh\necho "$@" >> '${Path.join(dir, "ran")}'\n`, { mode: 0o755 })
      const env = { ...box.env, PATH: `${fake.bin}:${box.env["PATH"]}`, WATCHDOG_USEC: "400000" }
      delete (env as Record<string, string | undefined>)["NOTIFY_SOCKET"]
      yield* Effect.scoped(Effect.gen(function*() {
        const { child } = yield* daemon({ ...box, env })
        yield* Effect.sleep("1 second")
        child.kill("SIGHUP")
        yield* Effect.sleep("500 millis")
      }))
      assert.isFalse(Fs.existsSync(Path.join(dir, "ran")))
      // The same fake with NOTIFY_SOCKET set is run: the check above can see it.
      yield* Effect.scoped(Effect.gen(function*() {
        yield* daemon({ ...box, env: { ...env, NOTIFY_SOCKET: Path.join(dir, "nowhere.sock") } })
        yield* eventually(async () => Fs.existsSync(Path.join(dir, "ran")) || undefined, 10_000, "the fake run")
      }))
    }), 60_000)
})
