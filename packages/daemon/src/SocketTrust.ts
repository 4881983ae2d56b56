/**
 * Whether a client may believe what answers on a socket path: checked before every connection by `token`
 * (the fast path in `main` and the CLI), `status`, `refresh` and the socket token source.
 *
 * Invariant: an answer is trusted only when nobody but a trusted user could have put the socket there. The
 * socket's directory must be a real directory (not a link) owned by a trusted user and writable by nobody
 * else, and the socket itself must be owned by a trusted user. Trusted users: this user, root, and the
 * daemon's user: `STRAVA_AUTH_DAEMON_USER` (a name or a uid) when set, else the system unit's user
 * `strava-auth` when the machine has one. Without the directory condition, a user who owns the directory could
 * swap the socket between the check and the connection.
 *
 * No socket, or no directory, is not a refusal: nothing answers, and the caller falls back to the file. This
 * module uses `node:fs` alone: it runs on `token`'s fast path, which loads no Effect.
 *
 * @since 0.1.0
 */
import * as Fs from "node:fs"
import * as Path from "node:path"

/** The id of `name` in /etc/passwd (or /etc/group), `undefined` when there is no such user (or group). */
const lookup = (name: string, file = "/etc/passwd"): number | undefined => {
  let passwd: string
  try {
    passwd = Fs.readFileSync(file, "utf8")
  } catch {
    return undefined
  }
  for (const line of passwd.split("\n")) {
    const fields = line.split(":")
    if (fields[0] === name && fields[2] !== undefined && /^\d+$/.test(fields[2])) return Number(fields[2])
  }
  return undefined
}

/**
 * The daemon's user: `STRAVA_AUTH_DAEMON_USER` (a name or a uid), else the user `strava-auth` if it exists.
 *
 * @since 0.1.0
 * @category trust
 */
export const daemonUser = (
  env: Readonly<Record<string, string | undefined>>
): { readonly name: string; readonly uid: number | undefined } => {
  const configured = env["STRAVA_AUTH_DAEMON_USER"]?.trim()
  const name = configured === undefined || configured === "" ? "strava-auth" : configured
  return { name, uid: /^\d+$/.test(name) ? Number(name) : lookup(name) }
}

/**
 * Why answers on `socketPath` must not be trusted, or `undefined` when they may be (or when nothing can
 * answer there).
 *
 * @since 0.1.0
 * @category trust
 */
export const refusal = (
  socketPath: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
  uid: number = typeof process.getuid === "function" ? process.getuid() : 0
): string | undefined => {
  // Cheap checks first: this user and root need no lookup.
  let daemon: { readonly name: string; readonly uid: number | undefined } | undefined
  const trusted = (owner: number) => owner === uid || owner === 0 || owner === (daemon ??= daemonUser(env)).uid
  const who = (owner: number) =>
    `belongs to uid ${owner}, not to you (uid ${uid}), root or the daemon's user (${
      daemon!.uid === undefined ? `${daemon!.name}: no such user` : `${daemon!.name}, uid ${daemon!.uid}`
    })`
  const advice = "Someone else may be serving their own token there. If the daemon runs as another user, set " +
    "STRAVA_AUTH_DAEMON_USER to that user; otherwise remove it and start your own daemon."
  const dir = Path.dirname(socketPath)
  let stats: Fs.Stats
  try {
    stats = Fs.lstatSync(dir)
  } catch {
    return undefined
  }
  if (stats.isSymbolicLink()) {
    return `refusing the daemon's socket ${socketPath}: its directory ${dir} is a symbolic link. ${advice}`
  }
  if (!stats.isDirectory()) return undefined
  if (!trusted(stats.uid)) {
    return `refusing the daemon's socket ${socketPath}: its directory ${dir} ${who(stats.uid)}. ${advice}`
  }
  if ((stats.mode & 0o022) !== 0) {
    return `refusing the daemon's socket ${socketPath}: its directory ${dir} is writable by group or others ` +
      `(mode ${(stats.mode & 0o7777).toString(8)}), so anyone could have replaced the socket. ${advice}`
  }
  try {
    stats = Fs.lstatSync(socketPath)
  } catch {
    return undefined
  }
  if (stats.isSymbolicLink()) return `refusing the daemon's socket ${socketPath}: it is a symbolic link. ${advice}`
  if (!trusted(stats.uid)) return `refusing the daemon's socket ${socketPath}: it ${who(stats.uid)}. ${advice}`
  return undefined
}

/**
 * The gid of a group given by name or number (`--socket-group`), `undefined` when there is no such group.
 *
 * @since 0.2.0
 * @category trust
 */
export const groupId = (group: string): number | undefined =>
  /^\d+$/.test(group) ? Number(group) : lookup(group, "/etc/group")
