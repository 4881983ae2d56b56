import { execFileSync, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"

import * as FileLock from "../src/FileLock.js"

// The cross-process lock every strava-auth process takes around a refresh: real processes, real files.

const here = Path.dirname(fileURLToPath(import.meta.url))
const root = Path.resolve(here, "../../..")
const taker = Path.join(here, "fixtures", "lock-taker.ts")

/** A temp directory under the run's TMPDIR, removed when the test's scope closes (passed or failed). */
const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "filelock-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

interface Exited {
  readonly pid: number
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stderr: string
}

/** Runs a lock taker in its own process, with `dir` as its TMPDIR (killed if the test's scope closes first). */
const takerProcess = (dir: string, lock: string, log: string, mode: "take" | "crash", rounds: number) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = spawn(process.execPath, ["--import", "tsx", taker, lock, log, mode, String(rounds)], {
        cwd: root,
        env: { ...process.env, TMPDIR: dir }, // tsx's compile cache goes there too, and goes with it
        stdio: ["ignore", "ignore", "pipe"]
      })
      let stderr = ""
      child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d))
      const exited = new Promise<Exited>((resolve) =>
        child.once("exit", (code, signal) => resolve({ pid: child.pid!, code, signal, stderr }))
      )
      return { child, exited }
    }),
    ({ child }) => Effect.sync(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"))
  )

/** A pid that ran and is gone. */
const deadPid = Effect.promise(() =>
  new Promise<number>((resolve) => {
    const child = spawn(process.execPath, ["-e", "0"], { stdio: "ignore" })
    child.once("exit", () => resolve(child.pid!))
  })
)

const record = (fields: Partial<FileLock.Holder>) =>
  JSON.stringify({ ...FileLock.identity(), nonce: "0123456789abcdef", created_at: Date.now(), ...fields })

describe("FileLock", () => {
  it.scopedLive(
    "8 processes and 8 holders that die inside the lock, from a dead holder's lock: never two holders, everyone gets it",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const lock = Path.join(dir, "token.json.lock")
        const log = Path.join(dir, "log")
        Fs.writeFileSync(log, "")
        // a lock left by a holder that died: same machine and boot, its pid gone
        Fs.writeFileSync(lock, record({ pid: yield* deadPid, start: "1" }) + "\n", { mode: 0o600 })
        const rounds = 6
        const takers = yield* Effect.all(Array.from({ length: 8 }, () => takerProcess(dir, lock, log, "take", rounds)))
        const crashers = yield* Effect.all(Array.from({ length: 8 }, () => takerProcess(dir, lock, log, "crash", 1)))
        const ended = yield* Effect.promise(() => Promise.all([...takers, ...crashers].map((t) => t.exited)))
        for (const t of ended.slice(0, 8)) assert.strictEqual(t.code, 0, `taker ${t.pid}: ${t.stderr}`)
        for (const t of ended.slice(8)) assert.strictEqual(t.signal, "SIGKILL", `crasher ${t.pid}: ${t.stderr}`)

        // The log, in order: every `enter` is followed by its own `exit`, or by nothing from anyone else when
        // its holder died inside (the next line is another holder's `enter`, after the takeover).
        const lines = Fs.readFileSync(log, "utf8").trim().split("\n").map((l) => l.split(" ") as [string, string])
        const crasherPids = new Set(ended.slice(8).map((t) => String(t.pid)))
        let holder: string | undefined
        for (const [i, [what, pid]] of lines.entries()) {
          if (what === "enter") {
            assert.isUndefined(holder, `line ${i + 1}: ${pid} entered while ${holder} held the lock`)
            holder = pid
            if (crasherPids.has(pid)) holder = undefined // it dies holding the lock; what follows is a takeover
          } else {
            assert.strictEqual(pid, holder, `line ${i + 1}: ${pid} left but ${holder} held the lock`)
            holder = undefined
          }
        }
        const entered = (pid: number) => lines.filter(([what, p]) => what === "enter" && p === String(pid)).length
        for (const t of ended.slice(0, 8)) assert.strictEqual(entered(t.pid), rounds, `taker ${t.pid}`)
        for (const t of ended.slice(8)) assert.strictEqual(entered(t.pid), 1, `crasher ${t.pid}`)
        assert.isFalse(Fs.existsSync(`${lock}.takeover`))
      }),
    { timeout: 120_000 }
  )

  it("a holder judged by more than its pid: this process is alive; another boot, or its pid reused, is dead", () => {
    const now = Date.now()
    const deadline = Duration.minutes(2)
    const me = FileLock.identity()
    assert.isTrue(FileLock.holderAlive(record({}), now, deadline))
    // the same pid (alive) but recorded during another boot of this machine
    assert.isFalse(FileLock.holderAlive(record({ boot_id: "00000000-0000-0000-0000-000000000000" }), now, deadline))
    // the same pid (alive) but another process started at another time: the pid was reused
    assert.notStrictEqual(me.start, "")
    assert.isFalse(FileLock.holderAlive(record({ start: String(Number(me.start) + 1) }), now, deadline))
  })

  it.live("a holder in another pid namespace or on another host counts as alive until the deadline", () =>
    Effect.gen(function*() {
      const now = Date.now()
      const deadline = Duration.minutes(2)
      const pid = yield* deadPid // dead here, which says nothing about a pid in another namespace or host
      for (const elsewhere of [{ pid_ns: "pid:[4026531836]-another" }, { host: "another-host.example" }]) {
        const fresh = record({ pid, ...elsewhere, created_at: now - 60_000 })
        assert.isTrue(FileLock.holderAlive(fresh, now, deadline), JSON.stringify(elsewhere))
        const old = record({ pid, ...elsewhere, created_at: now - 121_000 })
        assert.isFalse(FileLock.holderAlive(old, now, deadline), JSON.stringify(elsewhere))
      }
      // the same holder in our namespace is judged by its pid: dead
      assert.isFalse(FileLock.holderAlive(record({ pid, created_at: now }), now, deadline))
    }))

  it.scopedLive("a symbolic link at the lock's path is refused with the message, not followed", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const lock = Path.join(dir, "token.json.lock")
      const target = Path.join(dir, "elsewhere")
      Fs.writeFileSync(target, "precious\n")
      Fs.symlinkSync(target, lock)
      const ran: Array<string> = []
      const result = yield* Effect.either(
        FileLock.withLock(lock, Effect.sync(() => ran.push("ran")), { timeout: "5 seconds" })
      )
      assert.deepStrictEqual(ran, [])
      assert.strictEqual(result._tag === "Left" && result.left.reason, "Permissions")
      assert.include(result._tag === "Left" ? result.left.message : "", "the lock is a symbolic link")
      assert.include(result._tag === "Left" ? result.left.message : "", "strava-auth never creates")
      assert.strictEqual(Fs.readFileSync(target, "utf8"), "precious\n")
      assert.isTrue(Fs.lstatSync(lock).isSymbolicLink())
    }))

  it.scopedLive("a FIFO at the lock's path is refused with the message, without hanging on it", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const lock = Path.join(dir, "token.json.lock")
      execFileSync("mkfifo", ["-m", "600", lock])
      const ran: Array<string> = []
      // (disconnect: a lock attempt blocked in open(2) cannot be interrupted, but the test must still end)
      const result = yield* Effect.either(
        FileLock.withLock(lock, Effect.sync(() => ran.push("ran")), { timeout: "5 seconds" })
      ).pipe(
        Effect.disconnect,
        Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("hung on the FIFO") })
      )
      assert.deepStrictEqual(ran, [])
      assert.strictEqual(result._tag === "Left" && result.left.reason, "Permissions")
      assert.include(result._tag === "Left" ? result.left.message : "", "the lock is not a regular file")
      assert.isTrue(Fs.lstatSync(lock).isFIFO())
    }))
})
