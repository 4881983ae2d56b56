import { execFileSync, spawn } from "node:child_process"
import * as Fs from "node:fs"
import { createRequire, syncBuiltinESMExports } from "node:module"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

import { assert, describe, it, vi } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"

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
      assert.strictEqual(
        result._tag === "Left" ? result.left.message : "",
        `token file ${lock}: the lock is a symbolic link, which strava-auth never creates; someone may be tampering ` +
          "with the directory. Check who created it, remove it, and make the directory private (chmod 700)."
      )
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

  // What the mutation run found untested in this process (the lock takers above run in processes of their own,
  // which a mutant does not reach): the record, the judging of a holder, the takeover and release rules, errors.

  it("identity: this process's pid, boot id, start time (in clock ticks since boot), pid namespace and host", async () => {
    // a fresh copy of the module, so that its identity is read here, not taken from an earlier test
    vi.resetModules()
    const Fresh = await import("../src/FileLock.js")
    const me = Fresh.identity()
    assert.strictEqual(me.pid, process.pid)
    assert.strictEqual(me.boot_id, Fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim())
    assert.match(me.boot_id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
    // the start time in ticks (100 a second) is when this process started: the machine's uptime less its own
    assert.match(me.start, /^[0-9]+$/)
    const uptime = Number(Fs.readFileSync("/proc/uptime", "utf8").split(" ")[0])
    assert.approximately(Number(me.start) / 100, uptime - process.uptime(), 5)
    assert.strictEqual(me.pid_ns, Fs.readlinkSync("/proc/self/ns/pid"))
    assert.match(me.pid_ns, /^pid:\[[0-9]+\]$/)
    assert.strictEqual(me.host, Os.hostname())
    assert.strictEqual(Fresh.identity(), me) // read once
    assert.deepStrictEqual(FileLock.identity(), me)
  })

  it.live("an old-format lock (a bare pid): a running pid is alive; a gone or invalid one is dead", () =>
    Effect.gen(function*() {
      const now = Date.now()
      const deadline = Duration.minutes(2)
      assert.isTrue(FileLock.holderAlive(String(process.pid), now, deadline))
      assert.isTrue(FileLock.holderAlive("1", now, deadline)) // init always runs
      assert.isFalse(FileLock.holderAlive(String(yield* deadPid), now, deadline))
      for (const text of ["", "0", "-1", "1.5", "abc", "{\"pid\":1"]) {
        assert.isFalse(FileLock.holderAlive(text, now, deadline), JSON.stringify(text))
      }
    }))

  it("a record without a boot id or a start time is judged by its pid; another host's boot id says nothing", () => {
    const now = Date.now()
    const deadline = Duration.minutes(2)
    assert.isTrue(FileLock.holderAlive(record({ boot_id: "" }), now, deadline))
    assert.isTrue(FileLock.holderAlive(record({ start: "" }), now, deadline))
    // on another host a different boot id is not "an earlier boot": the deadline decides
    const elsewhere = { host: "another-host.example", boot_id: "00000000-0000-0000-0000-000000000000" }
    assert.isTrue(FileLock.holderAlive(record({ ...elsewhere, created_at: now - 1000 }), now, deadline))
    // the deadline is exclusive: a holder that took the lock exactly that long ago is dead
    assert.isTrue(FileLock.holderAlive(record({ ...elsewhere, created_at: now - 119_999 }), now, deadline))
    assert.isFalse(FileLock.holderAlive(record({ ...elsewhere, created_at: now - 120_000 }), now, deadline))
  })

  it.scoped("while held, the lock is a 0600 file of one line: this process's record, a fresh nonce, the time", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const lock = Path.join(dir, "token.json.lock")
      yield* TestClock.setTime(1_767_225_600_000)
      const held = () =>
        Effect.sync(() => ({
          text: Fs.readFileSync(lock, "utf8"),
          mode: Fs.statSync(lock).mode & 0o777,
          names: Fs.readdirSync(dir)
        }))
      const first = yield* FileLock.withLock(lock, held())
      assert.strictEqual(first.mode, 0o600)
      assert.deepStrictEqual(first.names, ["token.json.lock"]) // the record's temp file is gone
      assert.match(first.text, /^\{[^\n]*\}\n$/)
      const parsed = JSON.parse(first.text)
      assert.match(parsed.nonce, /^[0-9a-f]{16}$/)
      assert.deepStrictEqual(parsed, { ...FileLock.identity(), nonce: parsed.nonce, created_at: 1_767_225_600_000 })
      assert.deepStrictEqual(Fs.readdirSync(dir), [])
      const second = JSON.parse((yield* FileLock.withLock(lock, held())).text)
      assert.notStrictEqual(second.nonce, parsed.nonce)
    }))

  it.scopedLive("a live holder: the waiter gives up after its timeout with Busy, and leaves the holder's lock alone", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const lock = Path.join(dir, "token.json.lock")
      const live = record({}) + "\n" // this very process
      Fs.writeFileSync(lock, live, { mode: 0o600 })
      const ran: Array<string> = []
      const started = Date.now()
      const error = yield* Effect.flip(
        FileLock.withLock(lock, Effect.sync(() => ran.push("ran")), { timeout: "300 millis" })
      )
      assert.isAtLeast(Date.now() - started, 300)
      assert.deepStrictEqual(ran, [])
      assert.strictEqual(error._tag, "TokenFileError")
      assert.strictEqual(error.reason, "Busy")
      assert.strictEqual(error.path, lock)
      assert.strictEqual(
        error.message,
        `token file ${lock}: another strava-auth process has held the refresh lock too long; if none runs, delete ` +
          "the lock file"
      )
      assert.strictEqual(Fs.readFileSync(lock, "utf8"), live)
      assert.deepStrictEqual(Fs.readdirSync(dir), ["token.json.lock"])
    }))

  it.scopedLive("the waiter gets the lock as soon as the holder releases it", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const lock = Path.join(dir, "token.json.lock")
      const order: Array<string> = []
      const holder = yield* Effect.fork(
        FileLock.withLock(lock, Effect.sleep("200 millis").pipe(Effect.zipRight(Effect.sync(() => order.push("1")))))
      )
      // the holder's lock is there before the waiter starts
      const deadline = Date.now() + 5000
      while (!Fs.existsSync(lock)) {
        assert.isBelow(Date.now(), deadline, "the holder never took the lock")
        yield* Effect.yieldNow()
      }
      yield* FileLock.withLock(lock, Effect.sync(() => order.push("2")), { timeout: "5 seconds" })
      yield* Fiber.join(holder)
      assert.deepStrictEqual(order, ["1", "2"])
      assert.isFalse(Fs.existsSync(lock))
    }))

  it.scopedLive("a release removes the lock only while it holds our record; a failure inside releases it too", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const lock = Path.join(dir, "token.json.lock")
      const other = record({ nonce: "fedcba9876543210" }) + "\n"
      // someone replaced the lock while we held it (an operator deleted ours, another process took it)
      yield* FileLock.withLock(lock, Effect.sync(() => Fs.writeFileSync(lock, other)))
      assert.strictEqual(Fs.readFileSync(lock, "utf8"), other)
      Fs.rmSync(lock)
      const failed = yield* Effect.flip(FileLock.withLock(lock, Effect.fail("inside" as const)))
      assert.strictEqual(failed, "inside")
      assert.deepStrictEqual(Fs.readdirSync(dir), [])
    }))

  it.scopedLive("a dead holder's record is taken over; a takeover lock left by a dead taker is removed after 10 s", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const lock = Path.join(dir, "token.json.lock")
      const takeover = `${lock}.takeover`
      const dead = record({ pid: yield* deadPid }) + "\n"
      Fs.writeFileSync(lock, dead, { mode: 0o600 })
      assert.strictEqual(yield* FileLock.withLock(lock, Effect.succeed("taken"), { timeout: "5 seconds" }), "taken")
      assert.deepStrictEqual(Fs.readdirSync(dir), [])
      // a takeover under way (its taker alive, a second ago): nobody else removes the dead holder's lock
      Fs.writeFileSync(lock, dead, { mode: 0o600 })
      Fs.writeFileSync(takeover, `${process.pid} 0123\n`, { mode: 0o600 })
      const busy = new Date(Date.now() - 1000)
      Fs.utimesSync(takeover, busy, busy)
      const error = yield* Effect.flip(FileLock.withLock(lock, Effect.void, { timeout: "300 millis" }))
      assert.strictEqual(error.reason, "Busy")
      assert.strictEqual(Fs.readFileSync(lock, "utf8"), dead)
      assert.isTrue(Fs.existsSync(takeover))
      // the same takeover lock eleven seconds old: its taker died; it is removed, and the lock taken over
      const old = new Date(Date.now() - 11_000)
      Fs.utimesSync(takeover, old, old)
      assert.strictEqual(yield* FileLock.withLock(lock, Effect.succeed("taken"), { timeout: "5 seconds" }), "taken")
      assert.deepStrictEqual(Fs.readdirSync(dir), [])
    }))

  it.scopedLive("a holder that cannot be checked (another host) waits out the deadline: 2 minutes unless told", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const lock = Path.join(dir, "token.json.lock")
      const elsewhere = (age: number) => record({ host: "another-host.example", created_at: Date.now() - age }) + "\n"
      Fs.writeFileSync(lock, elsewhere(110_000), { mode: 0o600 })
      assert.strictEqual(
        (yield* Effect.flip(FileLock.withLock(lock, Effect.void, { timeout: "200 millis" }))).reason,
        "Busy"
      )
      Fs.writeFileSync(lock, elsewhere(125_000))
      assert.strictEqual(yield* FileLock.withLock(lock, Effect.succeed("taken"), { timeout: "5 seconds" }), "taken")
      Fs.writeFileSync(lock, elsewhere(11_000), { mode: 0o600 })
      const taken = yield* FileLock.withLock(lock, Effect.succeed("taken"), {
        timeout: "5 seconds",
        deadline: "10 seconds"
      })
      assert.strictEqual(taken, "taken")
      assert.deepStrictEqual(Fs.readdirSync(dir), [])
    }))

  it.scopedLive("a lock that cannot be created (its directory is gone) is an Io error saying why", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const lock = Path.join(dir, "absent", "token.json.lock")
      const error = yield* Effect.flip(FileLock.withLock(lock, Effect.void, { timeout: "5 seconds" }))
      assert.strictEqual(error.reason, "Io")
      assert.strictEqual(error.path, lock)
      assert.match(error.message, new RegExp(`^token file ${lock}: cannot take the refresh lock: ENOENT`))
    }))

  it.scopedLive(
    "16 fibers of one process, from a dead holder's lock: never two holders inside, everyone gets in",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const lock = Path.join(dir, "token.json.lock")
        Fs.writeFileSync(lock, record({ pid: yield* deadPid }) + "\n", { mode: 0o600 })
        let inside = 0
        let most = 0
        let entered = 0
        const critical = Effect.gen(function*() {
          inside += 1
          entered += 1
          most = Math.max(most, inside)
          yield* Effect.promise(() => Fs.promises.readdir(dir)) // let the others run meanwhile
          yield* Effect.sleep("5 millis")
          inside -= 1
        })
        yield* Effect.all(
          Array.from({ length: 16 }, () => FileLock.withLock(lock, critical, { timeout: "60 seconds" })),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(entered, 16)
        assert.strictEqual(most, 1)
        assert.deepStrictEqual(Fs.readdirSync(dir), [])
      }),
    { timeout: 90_000 }
  )

  it.scoped("a takeover lock exactly ten seconds old is still a taker's; older than ten seconds, it is removed", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const lock = Path.join(dir, "token.json.lock")
      const takeover = `${lock}.takeover`
      Fs.writeFileSync(lock, record({ pid: yield* deadPid }) + "\n", { mode: 0o600 })
      Fs.writeFileSync(takeover, `${process.pid} 0123\n`, { mode: 0o600 })
      const taken = new Date(1_767_225_600_000)
      Fs.utimesSync(takeover, taken, taken)
      yield* TestClock.setTime(taken.getTime() + 10_000)
      const fiber = yield* Effect.fork(FileLock.withLock(lock, Effect.void, { timeout: "10 seconds" }))
      /** Until the waiter sleeps before its next attempt (the attempt is over), or has ended. */
      const untilWaiting = Effect.gen(function*() {
        const deadline = Date.now() + 10_000
        while (Chunk.isEmpty(yield* TestClock.sleeps()) && Option.isNone(yield* Fiber.poll(fiber))) {
          assert.isBelow(Date.now(), deadline, "the waiter neither waited nor ended")
          yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
        }
      })
      yield* untilWaiting
      assert.isTrue(Fs.existsSync(takeover), "removed at exactly ten seconds")
      // the next attempts, 50 ms apart: the takeover lock is older than ten seconds now, so it goes, then the
      // dead holder's lock, and the waiter gets in
      for (let attempt = 0; Option.isNone(yield* Fiber.poll(fiber)); attempt++) {
        assert.isBelow(attempt, 10)
        yield* TestClock.adjust(50)
        yield* untilWaiting
      }
      yield* Fiber.join(fiber)
      assert.isAtMost(yield* TestClock.currentTimeMillis, taken.getTime() + 10_000 + 3 * 50)
      assert.deepStrictEqual(Fs.readdirSync(dir), [])
    }))

  it.scopedLive("a takeover removes the lock only if it still holds the record judged dead, not a new holder's", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const lock = Path.join(dir, "token.json.lock")
      Fs.writeFileSync(lock, record({ pid: yield* deadPid }) + "\n", { mode: 0o600 })
      const live = record({ nonce: "fedcba9876543210" }) + "\n"
      // Between this waiter's judging the record dead and its taking the takeover lock, another waiter takes over
      // and takes the lock: here, when the takeover lock is linked into place, the lock becomes a live holder's.
      const fsPromises = createRequire(import.meta.url)("node:fs/promises") as typeof Fs.promises
      const link = fsPromises.link
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          fsPromises.link = async (existing, target) => {
            await link(existing, target)
            if (String(target).endsWith(".takeover")) Fs.writeFileSync(lock, live)
          }
          syncBuiltinESMExports()
        }),
        () =>
          Effect.sync(() => {
            fsPromises.link = link
            syncBuiltinESMExports()
          })
      )
      const ran: Array<string> = []
      const error = yield* Effect.flip(
        FileLock.withLock(lock, Effect.sync(() => ran.push("ran")), { timeout: "300 millis" })
      )
      assert.strictEqual(error.reason, "Busy")
      assert.deepStrictEqual(ran, [])
      assert.strictEqual(Fs.readFileSync(lock, "utf8"), live)
      assert.deepStrictEqual(Fs.readdirSync(dir), ["token.json.lock"])
    }))

  it.scopedLive("a refusal is at once, not retried until the timeout", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const lock = Path.join(dir, "token.json.lock")
      Fs.symlinkSync(Path.join(dir, "elsewhere"), lock)
      const started = Date.now()
      const error = yield* Effect.flip(FileLock.withLock(lock, Effect.void, { timeout: "60 seconds" }))
      assert.strictEqual(error.reason, "Permissions")
      assert.isBelow(Date.now() - started, 10_000)
    }), { timeout: 90_000 })

  it.scopedLive("a holder that releases between our try and our look: the lock is free, and we take it", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const lock = Path.join(dir, "token.json.lock")
      Fs.writeFileSync(lock, record({}) + "\n", { mode: 0o600 }) // a live holder
      // when our hard link finds the lock taken, its holder has just released it
      const fsPromises = createRequire(import.meta.url)("node:fs/promises") as typeof Fs.promises
      const link = fsPromises.link
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          fsPromises.link = async (existing, target) => {
            try {
              await link(existing, target)
            } catch (error) {
              if (String(target) === lock) Fs.rmSync(lock, { force: true })
              throw error
            }
          }
          syncBuiltinESMExports()
        }),
        () =>
          Effect.sync(() => {
            fsPromises.link = link
            syncBuiltinESMExports()
          })
      )
      assert.strictEqual(yield* FileLock.withLock(lock, Effect.succeed("taken"), { timeout: "5 seconds" }), "taken")
      assert.deepStrictEqual(Fs.readdirSync(dir), [])
    }))

  // Mounting a tmpfs needs root; CI runs as root, so there the test always runs.
  const skipNoRoot = process.getuid?.() !== 0 && process.env["CI"] !== "true"
  it.scopedLive.skipIf(skipNoRoot)(
    `no space left for the lock: NoSpace, saying that Strava was not asked${
      skipNoRoot ? " [skipped: needs root]" : ""
    }`,
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const full = Path.join(dir, "full")
        Fs.mkdirSync(full, { mode: 0o700 })
        yield* Effect.acquireRelease(
          Effect.sync(() => execFileSync("mount", ["-t", "tmpfs", "-o", "size=16k,mode=0700", "tmpfs", full])),
          () => Effect.sync(() => execFileSync("umount", ["-l", full]))
        )
        // fill it to the byte
        const filler = Fs.openSync(Path.join(full, "filler"), "w")
        try {
          for (;;) Fs.writeSync(filler, Buffer.alloc(1024))
        } catch {
          for (;;) {
            try {
              Fs.writeSync(filler, Buffer.alloc(1))
            } catch {
              break
            }
          }
        } finally {
          Fs.closeSync(filler)
        }
        const lock = Path.join(full, "token.json.lock")
        const ran: Array<string> = []
        const error = yield* Effect.flip(
          FileLock.withLock(lock, Effect.sync(() => ran.push("ran")), { timeout: "5 seconds" })
        )
        assert.deepStrictEqual(ran, [])
        assert.strictEqual(error.reason, "NoSpace")
        assert.strictEqual(
          error.message,
          `token file ${lock}: cannot reserve the space to save a refresh (no space left for the lock), so no refresh ` +
            "was asked of Strava and the grant is unchanged. Free some space on that filesystem."
        )
        assert.isFalse(Fs.existsSync(lock))
      })
  )

  /**
   * Replaces `fs.promises.link` (which the lock takes its place with) for the rest of the test: `around` gets the
   * real one and the arguments.
   */
  const patchLink = (
    around: (link: typeof Fs.promises.link, existing: Fs.PathLike, target: Fs.PathLike) => Promise<void>
  ) => {
    const fsPromises = createRequire(import.meta.url)("node:fs/promises") as typeof Fs.promises
    const link = fsPromises.link
    return Effect.acquireRelease(
      Effect.sync(() => {
        fsPromises.link = (existing, target) => around(link, existing, target)
        syncBuiltinESMExports()
      }),
      () =>
        Effect.sync(() => {
          fsPromises.link = link
          syncBuiltinESMExports()
        })
    )
  }

  it.scopedLive(
    "a lock that cannot be linked into place (no hard links there) is an Io error at once, not a wait",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const lock = Path.join(dir, "token.json.lock")
        yield* patchLink(async (link, existing, target) => {
          if (String(target) !== lock) return link(existing, target)
          throw Object.assign(new Error(`EPERM: operation not permitted, link '${existing}' -> '${target}'`), {
            code: "EPERM"
          })
        })
        const started = Date.now()
        const error = yield* Effect.flip(FileLock.withLock(lock, Effect.void, { timeout: "60 seconds" }))
        assert.isBelow(Date.now() - started, 10_000)
        assert.strictEqual(error.reason, "Io")
        assert.match(error.message, new RegExp(`^token file ${lock}: cannot take the refresh lock: EPERM`))
        assert.deepStrictEqual(Fs.readdirSync(dir), []) // the record's temp file is gone too
      }),
    { timeout: 90_000 }
  )

  it.scopedLive("a takeover lock that goes away as we look at it: we try again, and take over the dead holder's lock", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const lock = Path.join(dir, "token.json.lock")
      const takeover = `${lock}.takeover`
      Fs.writeFileSync(lock, record({ pid: yield* deadPid }) + "\n", { mode: 0o600 })
      Fs.writeFileSync(takeover, `${process.pid} 0123\n`, { mode: 0o600 })
      // its taker finishes right after our link finds it there
      yield* patchLink(async (link, existing, target) => {
        try {
          await link(existing, target)
        } catch (error) {
          if (String(target) === takeover) Fs.rmSync(takeover, { force: true })
          throw error
        }
      })
      assert.strictEqual(yield* FileLock.withLock(lock, Effect.succeed("taken"), { timeout: "5 seconds" }), "taken")
      assert.deepStrictEqual(Fs.readdirSync(dir), [])
    }))

  it.scopedLive("a socket at the lock's path is refused, and not called a symbolic link", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const lock = Path.join(dir, "token.json.lock")
      const server = Net.createServer()
      yield* Effect.acquireRelease(
        Effect.promise(() => new Promise<void>((resolve) => server.listen(lock, resolve))),
        () => Effect.promise(() => new Promise<void>((resolve) => server.close(() => resolve())))
      )
      const ran: Array<string> = []
      const error = yield* Effect.flip(
        FileLock.withLock(lock, Effect.sync(() => ran.push("ran")), { timeout: "5 seconds" })
      )
      assert.deepStrictEqual(ran, [])
      assert.notInclude(error.message, "symbolic link")
      assert.isTrue(Fs.lstatSync(lock).isSocket())
    }))

  it.scopedLive("taking and releasing the lock many times leaves no file descriptor open", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const lock = Path.join(dir, "token.json.lock")
      const open = () => Fs.readdirSync("/proc/self/fd").length
      const before = open()
      for (let i = 0; i < 200; i++) yield* FileLock.withLock(lock, Effect.void)
      assert.isBelow(open() - before, 50)
    }))
})
