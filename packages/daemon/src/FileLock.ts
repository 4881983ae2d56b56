/**
 * A lock file shared by every process that uses a token file (the daemon's refresh helper, `strava-auth
 * token`, `refresh --local`, `revoke`, an app with `TokenFile.layerStore`).
 *
 * Invariants:
 * - The lock appears whole: its record is written to a temp file, then hard-linked to `<token>.lock`
 *   (`link` fails if the lock exists), so a holder killed at any moment leaves no lock or a complete one.
 * - A holder is judged by more than its pid. The record holds the pid, the boot id, the process's start time
 *   (from `/proc/<pid>/stat`), the pid namespace and the host name. A holder from an earlier boot is dead;
 *   a pid that runs another process now (reused after a reboot, or recycled) is dead; a holder in another pid
 *   namespace or on another host (a container sharing the directory) cannot be checked, and is treated as
 *   alive until `deadline` after it took the lock.
 * - Taking over a dead holder's lock is race-free: a taker first takes a second lock,
 *   `<token>.lock.takeover`, re-reads the lock under it and removes it only if it still holds the very record
 *   judged dead (each record has a random nonce). Two waiters that both judged the same holder dead cannot both
 *   remove locks: the second finds the first's new record and waits. A takeover lock older than ten seconds
 *   (its taker died within those few system calls) is removed.
 * - The lock is never followed through a symbolic link and never read beyond 4 KB: a lock that is not a
 *   regular file is refused with a message, not opened.
 * - A release removes the lock only while it still holds our record.
 *
 * @since 0.2.0
 */
import * as Fs from "node:fs"
import * as FsP from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"

import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Encoding from "effect/Encoding"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"

import { TokenFileError } from "./DaemonError.js"

/**
 * What a lock file holds.
 *
 * @since 0.2.0
 * @category models
 */
export const Holder = Schema.Struct({
  pid: Schema.Int,
  boot_id: Schema.String,
  start: Schema.String,
  pid_ns: Schema.String,
  host: Schema.String,
  nonce: Schema.String,
  created_at: Schema.Number
})

/**
 * @since 0.2.0
 * @category models
 */
export type Holder = typeof Holder.Type

const decodeHolder = Schema.decodeUnknownOption(Schema.parseJson(Holder))

const MAX_LOCK_BYTES = 4096
const TAKEOVER_STALE_MS = 10_000

const readText = (path: string): string => {
  try {
    return Fs.readFileSync(path, "utf8").trim()
  } catch {
    return ""
  }
}

/** Field 22 of /proc/<pid>/stat: the start time in clock ticks since boot. */
const startTimeOf = (pid: number): string => {
  const stat = readText(`/proc/${pid}/stat`)
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return fields[19] ?? ""
}

const pidNamespace = (): string => {
  try {
    return Fs.readlinkSync("/proc/self/ns/pid")
  } catch {
    return ""
  }
}

let self: Omit<Holder, "nonce" | "created_at"> | undefined

/**
 * This process, as a lock record describes it.
 *
 * @since 0.2.0
 * @category models
 */
export const identity = (): Omit<Holder, "nonce" | "created_at"> => {
  self ??= {
    pid: process.pid,
    boot_id: readText("/proc/sys/kernel/random/boot_id"),
    start: startTimeOf(process.pid),
    pid_ns: pidNamespace(),
    host: Os.hostname()
  }
  return self
}

const signalable = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

/**
 * Whether the holder of a lock is alive, as far as this process can tell (see the module's invariants).
 * `text` is the lock's content; an old-format lock holds only a pid.
 *
 * @since 0.2.0
 * @category judging
 */
export const holderAlive = (text: string, nowMillis: number, deadline: Duration.Duration): boolean => {
  const me = identity()
  const holder = decodeHolder(text)
  if (holder._tag === "None") {
    const pid = Number(text)
    // An old-format lock (a bare pid) or a record cut short: a valid pid decides, else the deadline does.
    if (Number.isInteger(pid) && pid > 0) return pid === me.pid || signalable(pid)
    return false
  }
  const h = holder.value
  if (h.host === me.host && h.boot_id !== "" && me.boot_id !== "" && h.boot_id !== me.boot_id) return false
  const checkable = h.host === me.host && h.pid_ns === me.pid_ns
  if (!checkable) return nowMillis - h.created_at < Duration.toMillis(deadline)
  if (!signalable(h.pid)) return false
  const start = startTimeOf(h.pid)
  return h.start === "" || start === "" || start === h.start
}

const nonce = () => Encoding.encodeHex(globalThis.crypto.getRandomValues(new Uint8Array(8)))

const NOFOLLOW = Fs.constants.O_NOFOLLOW ?? 0
const NONBLOCK = Fs.constants.O_NONBLOCK ?? 0

/**
 * Reads a lock file without following links or blocking on a FIFO, at most 4 KB. `undefined` when there is
 * none; fails for anything that is not a regular file.
 */
const readLock = async (lock: string): Promise<string | undefined> => {
  let handle: FsP.FileHandle
  try {
    handle = await FsP.open(lock, Fs.constants.O_RDONLY | NOFOLLOW | NONBLOCK)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === "ENOENT") return undefined
    if (code === "ELOOP") throw new NotRegular("a symbolic link")
    throw error
  }
  try {
    const info = await handle.stat()
    if (!info.isFile()) throw new NotRegular("not a regular file")
    const buffer = Buffer.alloc(MAX_LOCK_BYTES)
    const { bytesRead } = await handle.read(buffer, 0, MAX_LOCK_BYTES, 0)
    return buffer.subarray(0, bytesRead).toString("utf8").trim()
  } finally {
    await handle.close()
  }
}

class NotRegular extends Error {}

/** Creates `target` whole with `text`, exclusively: temp file, then a hard link. */
const createExclusive = async (target: string, text: string): Promise<boolean> => {
  const tmp = Path.join(Path.dirname(target), `.${Path.basename(target)}.${nonce()}.tmp`)
  const handle = await FsP.open(
    tmp,
    Fs.constants.O_WRONLY | Fs.constants.O_CREAT | Fs.constants.O_EXCL | NOFOLLOW,
    0o600
  )
  try {
    await handle.writeFile(text)
  } finally {
    await handle.close()
  }
  try {
    await FsP.link(tmp, target)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false
    throw error
  } finally {
    await FsP.rm(tmp, { force: true })
  }
}

/** Removes the dead holder's lock, if it still is that holder's, under the takeover lock. */
const takeOver = async (lock: string, stale: string, nowMillis: number): Promise<void> => {
  const takeover = `${lock}.takeover`
  if (!(await createExclusive(takeover, `${process.pid} ${nonce()}\n`))) {
    const info = await FsP.lstat(takeover).catch(() => undefined)
    if (info !== undefined && nowMillis - info.mtimeMs > TAKEOVER_STALE_MS) await FsP.rm(takeover, { force: true })
    return
  }
  try {
    if ((await readLock(lock)) === stale) await FsP.rm(lock, { force: true })
  } finally {
    await FsP.rm(takeover, { force: true })
  }
}

/**
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** How long to wait for the lock. Default 30 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
  /** How long a holder that cannot be checked counts as alive. Default 2 minutes. */
  readonly deadline?: Duration.DurationInput | undefined
}

type Attempt = { readonly _tag: "Held"; readonly record: string } | { readonly _tag: "Busy" }

/**
 * Runs `effect` holding the lock at `lock`, waiting for it up to the timeout.
 *
 * @since 0.2.0
 * @category locking
 */
export const withLock = <A, E, R>(
  lock: string,
  effect: Effect.Effect<A, E, R>,
  options: Options = {}
): Effect.Effect<A, E | TokenFileError, R> => {
  const deadline = Duration.decode(options.deadline ?? "2 minutes")
  const failure = (detail: string, reason: TokenFileError["reason"] = "Io") =>
    new TokenFileError({ path: lock, reason, detail })
  const attempt = Effect.flatMap(Clock.currentTimeMillis, (now) =>
    Effect.tryPromise({
      try: async (): Promise<Attempt> => {
        const record = JSON.stringify({ ...identity(), nonce: nonce(), created_at: now }) + "\n"
        if (await createExclusive(lock, record)) return { _tag: "Held", record: record.trim() }
        const current = await readLock(lock)
        if (current !== undefined && !holderAlive(current, now, deadline)) await takeOver(lock, current, now)
        return { _tag: "Busy" }
      },
      catch: (error) =>
        error instanceof NotRegular
          ? failure(
            `the lock is ${error.message}, which strava-auth never creates; someone may be tampering with the ` +
              "directory. Check who created it, remove it, and make the directory private (chmod 700).",
            "Permissions"
          )
          : (error as NodeJS.ErrnoException).code === "ENOSPC"
          ? failure(
            "cannot reserve the space to save a refresh (no space left for the lock), so no refresh was asked of " +
              "Strava and the grant is unchanged. Free some space on that filesystem.",
            "NoSpace"
          )
          : failure(`cannot take the refresh lock: ${(error as Error).message}`)
    }))
  const release = (record: string) =>
    Effect.promise(async () => {
      if ((await readLock(lock).catch(() => undefined)) === record) await FsP.rm(lock, { force: true })
    })
  // Each attempt is atomic with the registration of its release; the waiting between attempts is interruptible.
  const acquire = Effect.acquireRelease(
    Effect.flatMap(attempt, (a) => a._tag === "Held" ? Effect.succeed(a.record) : Effect.fail("busy" as const)),
    release
  ).pipe(
    Effect.retry({
      while: (e) => e === "busy",
      schedule: Schedule.spaced("50 millis").pipe(Schedule.upTo(options.timeout ?? "30 seconds"))
    }),
    Effect.mapError((e) =>
      e === "busy"
        ? failure(
          "another strava-auth process has held the refresh lock too long; if none runs, delete the lock file",
          "Busy"
        )
        : e
    )
  )
  return Effect.scoped(Effect.zipRight(acquire, effect))
}
