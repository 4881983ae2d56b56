/**
 * Where the token file and the socket live by default.
 *
 * Under systemd the unit's `StateDirectory=`/`RuntimeDirectory=` are used (systemd creates them 0700 and
 * passes `$STATE_DIRECTORY`/`$RUNTIME_DIRECTORY`); otherwise the XDG base directories; and for the socket,
 * when there is no `$XDG_RUNTIME_DIR`, a 0700 directory of the user's under the temp dir. The CLI and the
 * daemon compute the same paths from the same environment, so they agree without configuration (the
 * launchd/HOME mismatch pizauth users hit, #38, comes from disagreeing here).
 *
 * @since 0.1.0
 */
import * as Os from "node:os"
import * as Path from "node:path"

/**
 * @since 0.1.0
 * @category models
 */
export interface Environment {
  readonly env: Readonly<Record<string, string | undefined>>
  readonly home: string
  readonly tmpdir: string
  readonly uid: number
}

/**
 * The process's environment.
 *
 * @since 0.1.0
 * @category constructors
 */
export const current = (): Environment => ({
  env: process.env,
  home: Os.homedir(),
  tmpdir: Os.tmpdir(),
  uid: typeof process.getuid === "function" ? process.getuid() : 0
})

const first = (value: string | undefined): string | undefined => {
  // systemd passes several directories separated by ':' when the unit lists several; ours lists one.
  const head = value?.split(":")[0]
  return head === undefined || head === "" ? undefined : head
}

/**
 * `$STATE_DIRECTORY/token.json`, else `$XDG_STATE_HOME/strava-auth/token.json`, else
 * `~/.local/state/strava-auth/token.json`.
 *
 * @since 0.1.0
 * @category paths
 */
export const defaultTokenFile = (e: Environment): string => {
  const state = first(e.env["STATE_DIRECTORY"])
  if (state !== undefined) return Path.join(state, "token.json")
  const xdg = first(e.env["XDG_STATE_HOME"]) ?? Path.join(e.home, ".local", "state")
  return Path.join(xdg, "strava-auth", "token.json")
}

/**
 * `$RUNTIME_DIRECTORY/token.sock`, else `$XDG_RUNTIME_DIR/strava-auth/token.sock`, else
 * `$TMPDIR/strava-auth-<uid>/token.sock`.
 *
 * @since 0.1.0
 * @category paths
 */
export const defaultSocket = (e: Environment): string => {
  const runtime = first(e.env["RUNTIME_DIRECTORY"])
  if (runtime !== undefined) return Path.join(runtime, "token.sock")
  const xdg = first(e.env["XDG_RUNTIME_DIR"])
  if (xdg !== undefined) return Path.join(xdg, "strava-auth", "token.sock")
  return Path.join(e.tmpdir, `strava-auth-${e.uid}`, "token.sock")
}

/**
 * `$CREDENTIALS_DIRECTORY/strava-client-secret` (systemd `LoadCredential=`), when systemd set it.
 *
 * @since 0.1.0
 * @category paths
 */
export const credentialFile = (e: Environment): string | undefined => {
  const dir = first(e.env["CREDENTIALS_DIRECTORY"])
  return dir === undefined ? undefined : Path.join(dir, "strava-client-secret")
}
