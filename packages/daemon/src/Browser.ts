/**
 * Opening the authorize URL in the user's browser, when there is one to open.
 *
 * The URL goes to the opener as an argument; it holds no secret (client id, redirect URI, scope, state).
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
 * Tries to open `url`; says whether an opener was started. Never fails: the URL is printed anyway.
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
