/**
 * Opening the login's start address in the user's browser, when there is one to open.
 *
 * The address goes to the opener (`xdg-open`, which honours `$BROWSER`, or macOS's `open`) as an argument,
 * and from there to the browser's command line, which every local user can read in `/proc/PID/cmdline`. So it
 * must hold no secret: `login` passes its loopback `/start` address, never Strava's authorize URL, whose
 * `state` would let another user finish the login with their own code.
 *
 * @since 0.1.0
 */
import { spawn } from "node:child_process"

import * as Effect from "effect/Effect"

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
 * Tries to open `url` (which must hold no secret); says whether an opener was started. Never fails: the URL
 * is printed anyway.
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
