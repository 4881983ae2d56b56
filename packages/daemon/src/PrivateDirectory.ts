/**
 * A directory that only this user can change: the socket's and the token file's.
 *
 * Invariant: whatever the daemon serves or writes lives in a real directory (not a symbolic link), owned by
 * the process's user, with no permission bits for group or others (0700). Anyone else who could write to it
 * could replace the socket with their own server or the token file with their own grant; anyone who planted
 * it (a directory made beforehand in a shared `/tmp`, where the socket goes without `$XDG_RUNTIME_DIR`)
 * would own it. So the directory is created 0700 when missing, and then, whether new or old, checked with
 * `lstat` (a link is never followed) and refused unless it is ours and private. A refusal is a configuration
 * error (exit 78): a person must remove or fix the directory, and its message says how.
 *
 * `node:fs` rather than the platform's `FileSystem`: the check needs `lstat`, which `FileSystem` does not have.
 *
 * @since 0.1.0
 */
import * as Fs from "node:fs"

import * as Effect from "effect/Effect"

import { ConfigurationError } from "./DaemonError.js"

/**
 * What the directory holds, for the messages: which setting moves it elsewhere.
 *
 * @since 0.1.0
 * @category models
 */
export type Purpose = "socket" | "token file"

const setting: Record<Purpose, string> = {
  socket: "--socket or STRAVA_AUTH_SOCKET (or set XDG_RUNTIME_DIR)",
  "token file": "--token-file or STRAVA_AUTH_TOKEN_FILE"
}

const kind = (stats: Fs.Stats): string =>
  stats.isSymbolicLink()
    ? "a symbolic link"
    : stats.isFile()
    ? "a file"
    : stats.isSocket()
    ? "a socket"
    : stats.isFIFO()
    ? "a FIFO"
    : "not a directory"

const octal = (mode: number) => (mode & 0o7777).toString(8).padStart(4, "0")

/**
 * Why the directory `path` (its `lstat`) is not private to `uid`, or `undefined` when it is.
 *
 * @since 0.1.0
 * @category checking
 */
export const problem = (
  path: string,
  stats: Fs.Stats,
  uid: number,
  purpose: Purpose,
  group?: number | undefined
): string | undefined => {
  const where = `the ${purpose}'s directory ${path}`
  const elsewhere = `or keep the ${purpose} in a directory of your own (${setting[purpose]})`
  if (!stats.isDirectory()) {
    return `${where} is ${kind(stats)}, not a directory: another user may have put it there to take over the ` +
      `${purpose}. Remove it (rm ${path}; it is created anew, 0700), ${elsewhere}.`
  }
  if (stats.uid !== uid) {
    return `${where} belongs to uid ${stats.uid}, not to this user (uid ${uid}): its owner could replace the ` +
      `${purpose} with their own. Remove it (as root if need be: rm -r ${path}; it is created anew, 0700), ` +
      `${elsewhere}.`
  }
  // Shared with a group (`--socket-group`): 0750 with that group, readable and searchable, never writable.
  if (group !== undefined && (stats.mode & 0o777) === 0o750 && stats.gid === group) return undefined
  if ((stats.mode & 0o077) !== 0) {
    const writable = (stats.mode & 0o022) !== 0
    return `${where} has mode ${octal(stats.mode)}: ${
      writable ? "group or others can write to it and could replace the " + purpose : "group or others can read it"
    }. It must be 0700: chmod 700 ${path}, ${elsewhere}.`
  }
  return undefined
}

/**
 * Creates `path` (and missing parents) 0700 when missing, then refuses it unless it is a real directory owned
 * by this user with mode 0700 (see the module's invariant); with `group`, it is then opened to that group
 * (0750, never group-writable), for `--socket-group`.
 *
 * @since 0.1.0
 * @category checking
 */
export const ensure = (
  path: string,
  purpose: Purpose,
  group?: number | undefined
): Effect.Effect<void, ConfigurationError> =>
  Effect.suspend(() => {
    let created: unknown
    try {
      Fs.mkdirSync(path, { recursive: true, mode: 0o700 })
    } catch (error) {
      created = error // e.g. a file at the path: lstat below says what is there
    }
    let stats: Fs.Stats
    try {
      stats = Fs.lstatSync(path)
    } catch (error) {
      return Effect.fail(
        new ConfigurationError({
          detail: `cannot create the ${purpose}'s directory ${path}: ${describe(created ?? error)}`
        })
      )
    }
    const uid = typeof process.getuid === "function" ? process.getuid() : stats.uid
    // For a group, a private directory of ours is opened to it (0750): checked as private first.
    if (group !== undefined && problem(path, stats, uid, purpose) === undefined && stats.isDirectory()) {
      try {
        Fs.chownSync(path, -1, group)
        Fs.chmodSync(path, 0o750)
        stats = Fs.lstatSync(path)
      } catch (error) {
        return Effect.fail(
          new ConfigurationError({
            detail: `cannot give the ${purpose}'s directory ${path} to group ${group}: ${describe(error)}. The ` +
              "daemon's user must be a member of that group (or root)."
          })
        )
      }
    }
    const found = problem(path, stats, uid, purpose, group)
    return found === undefined ? Effect.void : Effect.fail(new ConfigurationError({ detail: found }))
  })

const describe = (error: unknown): string =>
  typeof error === "object" && error !== null && "code" in error ? String(error.code) : String(error)
