/**
 * The command line's grammar, in one table: every command, its flags, what each does, and the help printed
 * from it. `parse` reads argv against the table: a flag a command does not list is an error that names the
 * command and points at its `--help`, so no flag is ever accepted and ignored, and the help and the parser
 * cannot drift apart. The help reads like `gh`'s or `git`'s: one line per flag, plain text unless stdout is a
 * terminal (and `NO_COLOR` is unset).
 *
 * @internal The command's own, not part of `@strava-auth/daemon`'s entry.
 * @since 0.2.0
 */
import * as Option from "effect/Option"

/**
 * One flag. `key` is the property the command's handler reads. A `text` or `integer` flag without `fallback`
 * and not `required` is an `Option`; `boolean` flags are `false` unless given.
 *
 * @since 0.2.0
 * @category models
 */
export interface Flag {
  readonly key: string
  readonly name: string
  readonly kind: "boolean" | "text" | "integer" | "choice"
  /** The placeholder in the help: `PATH`, `N`, `LIST`. */
  readonly value?: string
  readonly choices?: ReadonlyArray<string>
  readonly fallback?: string | number
  readonly required?: boolean
  /** The environment variable that gives the value when the flag is absent. */
  readonly env?: string
  readonly description: string
}

/**
 * One command: `name` is its path after `strava-auth` (`"webhook create"`).
 *
 * @since 0.2.0
 * @category models
 */
export interface Spec {
  readonly name: string
  readonly summary: string
  readonly description?: string
  readonly flags: ReadonlyArray<Flag>
  /** Extra lines for the help, after the flags (rules between flags, examples). */
  readonly notes?: ReadonlyArray<string>
  /** Takes a command line after `--` (in `values.command`), as `exec` does; `<what>` names it in the usage. */
  readonly rest?: string
}

/** The handler's view of a flag's value. */
type ValueOf<F extends Flag> = F["kind"] extends "boolean" ? boolean
  : F extends { readonly fallback: number } ? number
  : F extends { readonly fallback: string } ? string
  : F extends { readonly required: true } ? string
  : F["kind"] extends "integer" ? Option.Option<number>
  : Option.Option<string>

/**
 * The values a command's handler gets for its flags.
 *
 * @since 0.2.0
 * @category models
 */
export type Values<Fs extends ReadonlyArray<Flag>> = { readonly [F in Fs[number] as F["key"]]: ValueOf<F> }

const flag = <const F extends Flag>(f: F): F => f

/**
 * The flags, shared by the commands that take them.
 *
 * @since 0.2.0
 * @category flags
 */
export const flags = {
  tokenFile: flag({
    key: "tokenFile",
    name: "token-file",
    kind: "text",
    value: "PATH",
    env: "STRAVA_AUTH_TOKEN_FILE",
    description: "the default account's token file; the others' are in accounts/ beside it (default " +
      "~/.local/state/strava-auth/token.json)"
  }),
  socket: flag({
    key: "socket",
    name: "socket",
    kind: "text",
    value: "PATH",
    env: "STRAVA_AUTH_SOCKET",
    description: "the daemon's Unix socket (default $XDG_RUNTIME_DIR/strava-auth/token.sock)"
  }),
  json: flag({ key: "json", name: "json", kind: "boolean", description: "print JSON instead of text" }),
  account: flag({
    key: "account",
    name: "account",
    kind: "text",
    value: "NAME",
    env: "STRAVA_AUTH_ACCOUNT",
    description: "the account: letters, digits, - and _ (default: default)"
  }),
  clientId: flag({
    key: "clientId",
    name: "client-id",
    kind: "text",
    value: "ID",
    env: "STRAVA_CLIENT_ID",
    description: "the app's Client ID (https://www.strava.com/settings/api)"
  }),
  refreshMargin: flag({
    key: "refreshMargin",
    name: "refresh-margin",
    kind: "text",
    value: "DURATION",
    env: "STRAVA_AUTH_REFRESH_MARGIN",
    description: "refresh when this little is left, e.g. 45m or 90s (default 45m)"
  }),
  stravaUrl: flag({
    key: "stravaUrl",
    name: "strava-url",
    kind: "text",
    value: "URL",
    env: "STRAVA_BASE_URL",
    description: "Strava's web origin, for OAuth (default https://www.strava.com)"
  }),
  apiUrl: flag({
    key: "apiUrl",
    name: "api-url",
    kind: "text",
    value: "URL",
    env: "STRAVA_API_URL",
    description: "Strava's API base (default https://www.strava.com/api/v3)"
  })
} as const

const f = flags

/**
 * Every command, in the order the help lists them.
 *
 * @since 0.2.0
 * @category commands
 */
export const commands = {
  login: {
    name: "login",
    summary: "log in to Strava in the browser and save the token file",
    description: "Serves a one-visit start address on 127.0.0.1, which sends the browser to Strava's authorize " +
      "page; Strava's redirect comes back to the same port. A running daemon picks the new token file up.",
    flags: [
      flag({
        key: "scope",
        name: "scope",
        kind: "text",
        value: "LIST",
        fallback: "read,activity:read",
        description: "scopes to ask for, comma-separated (default read,activity:read)"
      }),
      flag({
        key: "port",
        name: "port",
        kind: "integer",
        value: "N",
        fallback: 0,
        description: "the callback's port on 127.0.0.1, 0-65535, for ssh -L (default: a free one)"
      }),
      flag({
        key: "noBrowser",
        name: "no-browser",
        kind: "boolean",
        description: "print the address, open no browser"
      }),
      flag({
        key: "forcePrompt",
        name: "force-prompt",
        kind: "boolean",
        description: "always show Strava's authorize page (approval_prompt=force)"
      }),
      flag({
        key: "manual",
        name: "manual",
        kind: "boolean",
        description: "no callback server: paste the address the browser ends on"
      }),
      flag({
        key: "timeout",
        name: "timeout",
        kind: "text",
        value: "DURATION",
        fallback: "5m",
        description: "how long to wait for Strava's redirect, up to 24h (default 5m)"
      }),
      f.account,
      flag({
        key: "clientSecretFile",
        name: "client-secret-file",
        kind: "text",
        value: "PATH",
        description: "the app's Client Secret, in this file; the account remembers it and the client id"
      }),
      f.tokenFile,
      f.clientId,
      f.stravaUrl
    ],
    notes: [
      "An account other than default has its own token file beside the default one (accounts/NAME.json). " +
      "With --client-secret-file the account remembers its app (the client id and the file's path, never the " +
      "secret), and every later command and the daemon use that app for it."
    ]
  },
  daemon: {
    name: "daemon",
    summary: "keep the token file fresh and serve the token on the Unix socket",
    description: "Refreshes before the margin is reached, in a helper process so that a kill never loses a " +
      "rotated refresh token; SIGHUP re-reads the settings. Logs go to stderr.",
    flags: [
      flag({
        key: "logFormat",
        name: "log-format",
        kind: "choice",
        value: "FORMAT",
        choices: ["logfmt", "json"],
        env: "STRAVA_AUTH_LOG_FORMAT",
        description: "the log lines' format: logfmt or json (default logfmt)"
      }),
      flag({
        key: "metricsListen",
        name: "metrics-listen",
        kind: "text",
        value: "HOST:PORT",
        env: "STRAVA_AUTH_METRICS_LISTEN",
        description: "also serve /metrics (never a token) over TCP, e.g. 127.0.0.1:9464"
      }),
      flag({
        key: "socketGroup",
        name: "socket-group",
        kind: "text",
        value: "GROUP",
        env: "STRAVA_AUTH_SOCKET_GROUP",
        description: "let this group's members use the socket (socket 0660, its directory 0750)"
      }),
      flag({
        key: "onToken",
        name: "on-token",
        kind: "text",
        value: "CMD",
        env: "STRAVA_AUTH_ON_TOKEN",
        description: "run CMD (sh -c) after each new access token is stored; the token on its stdin"
      }),
      flag({
        key: "onLoginNeeded",
        name: "on-login-needed",
        kind: "text",
        value: "CMD",
        env: "STRAVA_AUTH_ON_LOGIN_NEEDED",
        description: "run CMD when a login is needed, and again every --login-notify-interval until then"
      }),
      flag({
        key: "onError",
        name: "on-error",
        kind: "text",
        value: "CMD",
        env: "STRAVA_AUTH_ON_ERROR",
        description: "run CMD after a refresh fails ($STRAVA_AUTH_ERROR says why)"
      }),
      flag({
        key: "loginNotifyInterval",
        name: "login-notify-interval",
        kind: "text",
        value: "DURATION",
        env: "STRAVA_AUTH_LOGIN_NOTIFY_INTERVAL",
        description: "how often --on-login-needed runs again while a login is needed (default 15m)"
      }),
      f.tokenFile,
      f.socket,
      f.clientId,
      f.refreshMargin,
      f.stravaUrl
    ]
  },
  token: {
    name: "token",
    summary: "print a valid access token",
    description: "From the daemon when one answers; else from the token file, refreshed under its lock when " +
      "within the margin. With --client-id, --refresh-margin or --strava-url it works on the file itself " +
      "with those settings instead of asking the daemon (which has its own).",
    flags: [f.json, f.account, f.tokenFile, f.socket, f.clientId, f.refreshMargin, f.stravaUrl]
  },
  status: {
    name: "status",
    summary: "show the athlete, scopes, expiry and the daemon's state, for every account or one",
    flags: [f.json, f.account, f.tokenFile, f.socket]
  },
  refresh: {
    name: "refresh",
    summary: "refresh the token now",
    description: "Through the daemon when it runs (it answers with the current token when it refreshed in the " +
      "last 30 s); with --local in this process, under the token file's lock. Retries for about 25 s.",
    flags: [
      f.json,
      flag({
        key: "local",
        name: "local",
        kind: "boolean",
        description: "refresh in this process, without asking the daemon"
      }),
      flag({
        key: "ifDue",
        name: "if-due",
        kind: "boolean",
        description: "with --local: only when the token is within the refresh margin"
      }),
      flag({
        key: "report",
        name: "report",
        kind: "boolean",
        description: "with --local: one attempt and one JSON line with the outcome (what the daemon runs)"
      }),
      f.account,
      f.tokenFile,
      f.socket,
      f.clientId,
      f.refreshMargin,
      f.stravaUrl
    ],
    notes: [
      "--client-id and --strava-url need --local (the daemon refreshes with its own settings); " +
      "--refresh-margin needs --if-due; --socket is for the daemon, so not with --local."
    ]
  },
  revoke: {
    name: "revoke",
    summary: "revoke the grant at Strava and delete the token file",
    flags: [f.account, f.tokenFile, f.clientId, f.stravaUrl]
  },
  systemdUnit: {
    name: "systemd-unit",
    summary: "print a systemd unit that runs this installation's daemon",
    flags: [
      flag({ key: "user", name: "user", kind: "boolean", description: "a user unit (the default)" }),
      flag({
        key: "system",
        name: "system",
        kind: "boolean",
        description: "a system unit (user strava-auth; needs an installed command, not a checkout)"
      })
    ]
  },
  dump: {
    name: "dump",
    summary: "write the grant to stdout, to move it to another machine (strava-auth restore there)",
    description: "Two holders of one grant invalidate each other at the next rotation, so a dump is a move: once " +
      "the grant is written out whole, the token file is set aside (token.json.moved-<time>, kept in case the " +
      "restore fails) and this machine stops refreshing it. --copy keeps it here too.",
    flags: [
      flag({
        key: "copy",
        name: "copy",
        kind: "boolean",
        description: "keep the grant here as well (the two copies then race at the next rotation)"
      }),
      flag({ key: "force", name: "force", kind: "boolean", description: "write to a terminal anyway" }),
      f.account,
      f.tokenFile
    ],
    notes: ["Example: strava-auth dump | ssh other-host strava-auth restore"]
  },
  restore: {
    name: "restore",
    summary: "read a grant from stdin (from strava-auth dump) and write it as the token file",
    flags: [
      flag({ key: "force", name: "force", kind: "boolean", description: "replace a token file already there" }),
      f.account,
      f.tokenFile
    ]
  },
  exec: {
    name: "exec",
    summary: "run a command with a valid access token in $STRAVA_ACCESS_TOKEN, renewed as it changes",
    description: "Runs CMD with STRAVA_ACCESS_TOKEN set to the token `strava-auth token` would print, passes " +
      "signals through, and exits with CMD's status. When the token changes (checked every 15 s), it " +
      "restarts CMD with the new one, sends it a signal, or does nothing, as --on-change says.",
    flags: [
      flag({
        key: "onChange",
        name: "on-change",
        kind: "text",
        value: "ACTION",
        fallback: "restart",
        description: "on a new token: restart (default), signal:NAME (e.g. signal:HUP), or none"
      }),
      f.account,
      f.tokenFile,
      f.socket
    ],
    rest: "-- CMD [ARGS...]"
  },
  webhook: {
    name: "webhook",
    summary: "manage the app's Strava push subscription: create, view, delete",
    flags: []
  },
  webhookCreate: {
    name: "webhook create",
    summary: "subscribe the app's webhook route to Strava's events (one subscription per app)",
    flags: [
      flag({
        key: "callbackUrl",
        name: "callback-url",
        kind: "text",
        value: "URL",
        required: true,
        description: "where Strava posts events: the public URL of the app's webhook route"
      }),
      flag({
        key: "verifyTokenFile",
        name: "verify-token-file",
        kind: "text",
        value: "PATH",
        env: "STRAVA_WEBHOOK_VERIFY_TOKEN",
        description: "a file holding the verify token (the variable holds the token itself)"
      }),
      f.clientId,
      f.apiUrl
    ]
  },
  webhookView: {
    name: "webhook view",
    summary: "show the app's push subscription",
    flags: [f.json, f.clientId, f.apiUrl]
  },
  webhookDelete: {
    name: "webhook delete",
    summary: "delete the app's push subscription",
    flags: [
      flag({
        key: "id",
        name: "id",
        kind: "integer",
        value: "ID",
        description: "the subscription to delete (default: the app's one)"
      }),
      f.clientId,
      f.apiUrl
    ]
  }
} as const satisfies Record<string, Spec>

/**
 * @since 0.2.0
 * @category commands
 */
export type Name = keyof typeof commands

const version = "0.1.0"

const root: Spec = {
  name: "",
  summary: "log in to Strava once, keep the token fresh, and serve it to scripts on a Unix socket",
  flags: []
}

const topLevel: ReadonlyArray<Name> = [
  "login",
  "daemon",
  "token",
  "status",
  "refresh",
  "revoke",
  "exec",
  "dump",
  "restore",
  "systemdUnit",
  "webhook"
]
const webhookSubcommands: ReadonlyArray<Name> = ["webhookCreate", "webhookView", "webhookDelete"]

const exitCodes = "Exit codes: 0 ok, 1 unexpected, 64 usage, 75 temporary failure, 77 login needed, 78 configuration."

/**
 * What argv asks for: help or the version (printed on stdout, exit 0), a usage error (stderr, exit 64), or a
 * command with its values.
 *
 * @since 0.2.0
 * @category parsing
 */
export type Parsed =
  | { readonly _tag: "Help"; readonly text: string }
  | { readonly _tag: "Version"; readonly text: string }
  | { readonly _tag: "Invalid"; readonly command: string; readonly problem: string }
  | { readonly _tag: "Run"; readonly name: Name; readonly values: Record<string, unknown> }

const commandOf = (word: string, among: ReadonlyArray<Name>): Name | undefined =>
  among.find((name) => commands[name].name.split(" ").pop() === word)

/** The closest command to a mistyped one (at most two edits away). */
const closest = (word: string, among: ReadonlyArray<string>): string | undefined => {
  const distance = (a: string, b: string) => {
    const row = Array.from({ length: b.length + 1 }, (_, i) => i)
    for (let i = 1; i <= a.length; i++) {
      let previous = row[0]!
      row[0] = i
      for (let j = 1; j <= b.length; j++) {
        const current = row[j]!
        row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1))
        previous = current
      }
    }
    return row[b.length]!
  }
  return among.map((name) => [name, distance(word, name)] as const).filter(([, d]) => d <= 2)
    .sort((a, b) => a[1] - b[1])[0]?.[0]
}

const invalid = (command: string, problem: string): Parsed => ({ _tag: "Invalid", command, problem })

/**
 * A usage error as printed: the command, what is wrong, and where its usage is.
 *
 * @since 0.2.0
 * @category parsing
 */
export const usageMessage = (command: string, problem: string): string => {
  const full = command === "" ? "strava-auth" : `strava-auth ${command}`
  return `${full}: ${problem}\nRun \`${full} --help\` for usage.`
}

const isHelp = (arg: string) => arg === "--help" || arg === "-h"

/**
 * Reads argv (without node and the script) against the table.
 *
 * @since 0.2.0
 * @category parsing
 */
export const parse = (args: ReadonlyArray<string>, style: Style = plain): Parsed => {
  const [first, ...rest] = args
  if (first === undefined || isHelp(first)) return { _tag: "Help", text: helpOf(undefined, style) }
  if (first === "--version" || first === "-V") return { _tag: "Version", text: version }
  if (first === "help") {
    const [topic, sub] = rest
    if (topic === undefined) return { _tag: "Help", text: helpOf(undefined, style) }
    const name = commandOf(topic, topLevel)
    if (name === undefined) return invalid("", `no help on '${topic}': it is not a command.`)
    const subName = name === "webhook" && sub !== undefined ? commandOf(sub, webhookSubcommands) : undefined
    return { _tag: "Help", text: helpOf(subName ?? name, style) }
  }
  if (first.startsWith("-")) {
    // A flag before the command: show the same line in the right order when there is a command after it.
    const at = args.findIndex((arg) => commandOf(arg, topLevel) !== undefined)
    if (at > 0) {
      const reordered = [
        ...args.slice(at, at + (args[at] === "webhook" ? 2 : 1)),
        ...args.slice(0, at),
        ...args.slice(at + (args[at] === "webhook" ? 2 : 1))
      ]
      return invalid("", `flags go after the command's name: \`strava-auth ${reordered.join(" ")}\`.`)
    }
    return invalid("", `unknown flag ${first.split("=")[0]}; a command comes first.`)
  }
  let name = commandOf(first, topLevel)
  if (name === undefined) {
    const guess = closest(first, topLevel.map((n) => commands[n].name))
    return invalid("", `'${first}' is not a command.${guess === undefined ? "" : ` Did you mean '${guess}'?`}`)
  }
  let remaining = rest
  if (name === "webhook") {
    const [sub, ...after] = rest
    if (sub === undefined || isHelp(sub)) {
      return sub === undefined
        ? invalid("webhook", "which one: create, view or delete?")
        : { _tag: "Help", text: helpOf("webhook", style) }
    }
    const subName = commandOf(sub, webhookSubcommands)
    if (subName === undefined) {
      return invalid("webhook", `'${sub}' is not a webhook command (create, view, delete).`)
    }
    name = subName
    remaining = after
  }
  const spec: Spec = commands[name]
  const ownArgs = spec.rest === undefined || !remaining.includes("--")
    ? remaining
    : remaining.slice(0, remaining.indexOf("--"))
  if (ownArgs.some(isHelp)) return { _tag: "Help", text: helpOf(name, style) }
  const values: Record<string, unknown> = {}
  const seen = new Set<string>()
  for (let i = 0; i < remaining.length; i++) {
    const arg = remaining[i]!
    if (arg === "--" && spec.rest !== undefined) {
      values["command"] = remaining.slice(i + 1)
      break
    }
    if (!arg.startsWith("--")) {
      return invalid(
        spec.name,
        spec.rest === undefined
          ? `unexpected argument '${arg}'; it takes only flags.`
          : `unexpected argument '${arg}'; the command goes after --: strava-auth ${spec.name} ${spec.rest}.`
      )
    }
    const equals = arg.indexOf("=")
    const flagName = equals === -1 ? arg.slice(2) : arg.slice(2, equals)
    const flag = spec.flags.find((f) => f.name === flagName)
    if (flag === undefined) {
      const guess = closest(flagName, spec.flags.map((f) => f.name))
      return invalid(
        spec.name,
        `unknown flag --${flagName}.${guess === undefined ? "" : ` Did you mean --${guess}?`}`
      )
    }
    if (seen.has(flag.name)) return invalid(spec.name, `--${flag.name} is given twice.`)
    seen.add(flag.name)
    if (flag.kind === "boolean") {
      if (equals !== -1) return invalid(spec.name, `--${flag.name} takes no value.`)
      values[flag.key] = true
      continue
    }
    let value: string
    if (equals !== -1) value = arg.slice(equals + 1)
    else {
      const next = remaining[i + 1]
      if (next === undefined || (next.startsWith("--") && next.length > 2)) {
        return invalid(spec.name, `--${flag.name} needs a value: --${flag.name} ${flag.value ?? "VALUE"}.`)
      }
      value = next
      i++
    }
    if (flag.kind === "integer") {
      if (!/^\d{1,15}$/.test(value)) {
        return invalid(spec.name, `--${flag.name} takes a whole number (${flag.value ?? "N"}); got '${value}'.`)
      }
      values[flag.key] = Number(value)
    } else if (flag.kind === "choice") {
      if (!flag.choices!.includes(value)) {
        return invalid(spec.name, `--${flag.name} takes ${flag.choices!.join(" or ")}; got '${value}'.`)
      }
      values[flag.key] = value
    } else values[flag.key] = value
  }
  if (spec.rest !== undefined && (values["command"] as ReadonlyArray<string> | undefined ?? []).length === 0) {
    return invalid(spec.name, `which command? strava-auth ${spec.name} [flags] ${spec.rest}.`)
  }
  for (const flag of spec.flags) {
    if (flag.key in values) {
      if (flag.kind !== "boolean" && flag.fallback === undefined && flag.required !== true) {
        values[flag.key] = Option.some(values[flag.key])
      }
      continue
    }
    if (flag.required === true) {
      return invalid(spec.name, `--${flag.name} ${flag.value ?? "VALUE"} is required.`)
    }
    values[flag.key] = flag.kind === "boolean" ? false : flag.fallback ?? Option.none()
  }
  return { _tag: "Run", name, values }
}

/**
 * How the help marks its headings: bold on a terminal, nothing otherwise.
 *
 * @since 0.2.0
 * @category help
 */
export interface Style {
  readonly heading: (text: string) => string
}

/** @since 0.2.0 */
export const plain: Style = { heading: (text) => text }

/**
 * Bold headings when stdout is a terminal, `NO_COLOR` is unset or empty and `TERM` is not `dumb`.
 *
 * @since 0.2.0
 * @category help
 */
export const styleFor = (isTty: boolean, env: Record<string, string | undefined>): Style =>
  isTty && (env["NO_COLOR"] === undefined || env["NO_COLOR"] === "") && env["TERM"] !== "dumb"
    ? { heading: (text) => `\u001b[1m${text}\u001b[22m` }
    : plain

const columns = (rows: ReadonlyArray<readonly [string, string]>) => {
  const width = Math.min(Math.max(...rows.map(([left]) => left.length)) + 2, 36)
  return rows.map(([left, right]) =>
    left.length + 2 > width ? `  ${left}\n  ${" ".repeat(width)}${right}` : `  ${left.padEnd(width)}${right}`
  ).join("\n")
}

const wrap = (text: string, width = 100) => {
  const lines: Array<string> = []
  let line = ""
  for (const word of text.split(" ")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else line = line === "" ? word : `${line} ${word}`
  }
  if (line !== "") lines.push(line)
  return lines.join("\n")
}

/**
 * The help for a command (or the whole command when `name` is undefined), as printed by `--help`.
 *
 * @since 0.2.0
 * @category help
 */
export const helpOf = (name: Name | undefined, style: Style = plain): string => {
  const h = style.heading
  if (name === undefined) {
    return [
      `strava-auth: ${root.summary}.`,
      "",
      `${h("Usage:")} strava-auth COMMAND [flags]`,
      "",
      h("Commands:"),
      columns(topLevel.map((n) => [commands[n].name, commands[n].summary])),
      "",
      h("Flags:"),
      columns([["-h, --help", "show help (also after a command)"], ["-V, --version", "print the version"]]),
      "",
      "Run `strava-auth COMMAND --help` for a command's flags. A flag's variable (env) is used when the flag",
      "is absent. The client secret is never a flag: STRAVA_CLIENT_SECRET or STRAVA_CLIENT_SECRET_FILE.",
      exitCodes
    ].join("\n")
  }
  const spec: Spec = commands[name]
  if (name === "webhook") {
    return [
      `strava-auth webhook: ${spec.summary}.`,
      "",
      `${h("Usage:")} strava-auth webhook COMMAND [flags]`,
      "",
      h("Commands:"),
      columns(webhookSubcommands.map((n) => [commands[n].name.split(" ")[1]!, commands[n].summary])),
      "",
      "Run `strava-auth webhook COMMAND --help` for a command's flags.",
      exitCodes
    ].join("\n")
  }
  const required = spec.flags.filter((f) => f.required === true).map((f) => ` --${f.name} ${f.value}`).join("")
  return [
    `strava-auth ${spec.name}: ${spec.summary}.`,
    "",
    `${h("Usage:")} strava-auth ${spec.name}${required} [flags]${spec.rest === undefined ? "" : ` ${spec.rest}`}`,
    ...(spec.description === undefined ? [] : ["", wrap(spec.description)]),
    "",
    h("Flags:"),
    columns([
      ...spec.flags.map((f): readonly [string, string] => [
        `--${f.name}${f.value === undefined ? "" : ` ${f.value}`}`,
        `${f.description}${f.env === undefined ? "" : ` (env ${f.env})`}`
      ]),
      ["-h, --help", "show this help"]
    ]),
    ...(spec.notes === undefined ? [] : ["", ...spec.notes.map((note) => wrap(note))]),
    "",
    exitCodes
  ].join("\n")
}
