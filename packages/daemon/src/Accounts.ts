/**
 * Accounts: several grants in one installation, each under a name (`--account NAME`, `STRAVA_AUTH_ACCOUNT`).
 *
 * The layout, beside the default account's token file (`--token-file`, `STRAVA_AUTH_TOKEN_FILE`, or the state
 * directory's `token.json`), so that every command and the daemon find the same files without configuration:
 *
 * ```
 * <dir>/token.json                          the account `default` (where it has always been)
 * <dir>/accounts/<name>.json                every other account's token file (same format, 0600)
 * <dir>/accounts/<name>.settings.json       an account's own app, when it has one: its client id and the path
 *                                           of its client secret's file (never the secret)
 * ```
 *
 * An account exists when its token file or its settings file does (`default` always exists). Names are
 * letters, digits, `-` and `_`, at most 64: they are file names, and no name can reach outside the directory.
 *
 * `node:fs` and `node:path` only, no Effect: `token`'s fast path (`main.ts`) finds an account's file with it.
 * An account's settings are read and written by `Settings`.
 *
 * @internal The command's own, not part of `@strava-auth/daemon`'s entry.
 * @since 0.3.0
 */
import * as Fs from "node:fs"
import * as Path from "node:path"

/**
 * The account used when none is named.
 *
 * @since 0.3.0
 * @category constants
 */
export const defaultName = "default"

// Not starting with `-`: a name must never read as a flag (`--account -x` in a helper's argv)
const namePattern = /^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$/

/**
 * What is wrong with a name, or `undefined` when it is one.
 *
 * @since 0.3.0
 * @category parsing
 */
export const problem = (name: string, source: string): string | undefined =>
  namePattern.test(name)
    ? undefined
    : `${source} takes an account name of letters, digits, - and _, not starting with - (at most 64 ` +
      `characters); got ${JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}...` : name)}.`

/**
 * The directory of the accounts other than `default`.
 *
 * @since 0.3.0
 * @category paths
 */
export const directoryOf = (defaultTokenFile: string): string => Path.join(Path.dirname(defaultTokenFile), "accounts")

/**
 * An account's token file.
 *
 * @since 0.3.0
 * @category paths
 */
export const tokenFileOf = (defaultTokenFile: string, name: string): string =>
  name === defaultName ? defaultTokenFile : Path.join(directoryOf(defaultTokenFile), `${name}.json`)

/**
 * An account's settings file (its own app).
 *
 * @since 0.3.0
 * @category paths
 */
export const settingsFileOf = (defaultTokenFile: string, name: string): string =>
  Path.join(directoryOf(defaultTokenFile), `${name}.settings.json`)

/**
 * The accounts there are: `default` first, then the others by name; `undefined` when the directory cannot be
 * read now (anything but its absence), so a caller keeps what it knew rather than dropping every account.
 *
 * @since 0.3.0
 * @category reading
 */
export const list = (defaultTokenFile: string): ReadonlyArray<string> | undefined => {
  let names: Array<string>
  try {
    names = Fs.readdirSync(directoryOf(defaultTokenFile))
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") return undefined
    names = []
  }
  const found = new Set<string>()
  for (const file of names) {
    const name = file.endsWith(".settings.json")
      ? file.slice(0, -".settings.json".length)
      : file.endsWith(".json")
      ? file.slice(0, -".json".length)
      : undefined
    if (name !== undefined && name !== defaultName && namePattern.test(name)) found.add(name)
  }
  return [defaultName, ...[...found].sort()]
}

/**
 * The command that logs an account in (`--account=NAME`, which no name can turn into another flag).
 *
 * @since 0.3.0
 * @category messages
 */
export const loginCommand = (name: string): string =>
  name === defaultName ? "strava-auth login" : `strava-auth login --account=${name}`

/**
 * A socket path for an account: `?account=NAME` for any account but `default`.
 *
 * @since 0.3.0
 * @category paths
 */
export const socketPath = (path: string, name: string): string =>
  name === defaultName ? path : `${path}?account=${encodeURIComponent(name)}`
