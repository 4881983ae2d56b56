/**
 * Opening the login's start address in the user's browser, when there is one to open.
 *
 * Whatever goes to the opener (`xdg-open`, which honours `$BROWSER`, or macOS's `open`) as an argument goes on
 * to the browser's command line, which every local user can read in `/proc/PID/cmdline`. The start address
 * holds this login's key, so it is never an argument: `openPrivately` writes a small page (0600) that
 * redirects to it into a fresh directory of its own (0700, under `os.tmpdir()`) and opens that page's
 * `file://` address. Other users see only the page's path, and cannot read the page.
 *
 * @since 0.1.0
 */
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { pathToFileURL } from "node:url"

import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

/**
 * The opener for this platform, or `undefined` where there is no display to open a browser on.
 *
 * @since 0.1.0
 * @category models
 */
export const opener = (
  platform: NodeJS.Platform = process.platform,
  env: Readonly<Record<string, string | undefined>> = process.env
): string | undefined => {
  if (platform === "darwin") return "open"
  if (platform === "win32") return undefined
  return env["DISPLAY"] || env["WAYLAND_DISPLAY"] ? "xdg-open" : undefined
}

/**
 * Tries to open `url`, which must hold no secret (it ends up on command lines); says whether an opener was
 * started. Never fails: the caller prints the address anyway.
 *
 * @since 0.1.0
 * @category actions
 */
export const open = (url: string): Effect.Effect<boolean> =>
  Effect.sync(() => {
    const command = opener()
    if (command === undefined) return false
    try {
      const child = spawn(command, [url], { stdio: "ignore", detached: true })
      child.on("error", () => undefined)
      child.unref()
      return true
    } catch {
      return false
    }
  })

const escape = (value: string): string =>
  value.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" })[c]!)

/**
 * The page that sends the browser on to `url`: a meta refresh, and a link for people (and browsers that ignore
 * the refresh). No referrer is sent.
 *
 * @since 0.1.0
 * @category rendering
 */
export const redirectPage = (url: string): string =>
  `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">` +
  `<meta http-equiv="refresh" content="0;url=${escape(url)}"><title>strava-auth login</title></head>` +
  `<body><p>Opening the Strava login&hellip; If nothing happens, ` +
  `<a id="continue" href="${escape(url)}" rel="noreferrer">continue to the login</a>.</p></body></html>`

/** A fresh directory only this user can enter: made by `mkdtemp` (0700), then checked with `lstat`. */
const privateDirectory = (): string => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "strava-auth-login-"))
  const stats = Fs.lstatSync(dir)
  const uid = process.getuid?.()
  if (!stats.isDirectory() || (uid !== undefined && stats.uid !== uid) || (stats.mode & 0o077) !== 0) {
    Fs.rmSync(dir, { recursive: true, force: true })
    throw new Error(`${dir} is not a private directory`)
  }
  return dir
}

const writePrivately = (file: string, content: string) => {
  const flags = Fs.constants.O_WRONLY | Fs.constants.O_CREAT | Fs.constants.O_EXCL | (Fs.constants.O_NOFOLLOW ?? 0)
  const fd = Fs.openSync(file, flags, 0o600)
  try {
    Fs.fchmodSync(fd, 0o600)
    Fs.writeSync(fd, content)
  } finally {
    Fs.closeSync(fd)
  }
}

const pageFor = (url: string): Effect.Effect<boolean, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      try {
        const dir = privateDirectory()
        try {
          const file = Path.join(dir, "start.html")
          writePrivately(file, redirectPage(url))
          return dir
        } catch {
          Fs.rmSync(dir, { recursive: true, force: true })
          return undefined
        }
      } catch {
        return undefined
      }
    }),
    (dir) =>
      Effect.sync(() => {
        try {
          if (dir !== undefined) Fs.rmSync(dir, { recursive: true, force: true })
        } catch {
          // best effort: the page is readable by this user only
        }
      })
  ).pipe(
    Effect.flatMap((dir) =>
      dir === undefined ? Effect.succeed(false) : open(pathToFileURL(Path.join(dir, "start.html")).href)
    )
  )

/**
 * Opens `url` (which may hold a secret) in the browser through a private page: a `file://` address is all the
 * opener's (and the browser's) command line shows. The page and its directory are removed when the scope
 * closes (the login ends, whatever happens). Says whether an opener was started; never fails, and makes no
 * page where there is no opener.
 *
 * @since 0.1.0
 * @category actions
 */
export const openPrivately = (url: string): Effect.Effect<boolean, never, Scope.Scope> =>
  Effect.suspend(() => opener() === undefined ? Effect.succeed(false) : pageFor(url))
