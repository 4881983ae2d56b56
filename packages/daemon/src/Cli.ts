/**
 * The `strava-auth` command line: login, daemon, token, status, refresh, revoke, systemd-unit.
 *
 * Every command takes its flags after its name (`strava-auth token --json`), falls back to the environment
 * for each, and exits with the sysexits code of `DaemonError.exitCodeOf`. Output meant for scripts goes to
 * stdout (the token, JSON, the unit file, the authorize URL); everything for people goes to stderr.
 *
 * @since 0.1.0
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

import * as FileSystem from "@effect/platform/FileSystem"
import * as HttpClient from "@effect/platform/HttpClient"
import * as NodeContext from "@effect/platform-node/NodeContext"
import type { Token } from "@strava-auth/core"
import {
  GrantStore,
  PushSubscription,
  RefreshEngine,
  StravaConfig,
  StravaOAuth,
  StravaScope,
  TokenSource
} from "@strava-auth/core"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Runtime from "effect/Runtime"
import * as Schedule from "effect/Schedule"

import * as Accounts from "./Accounts.js"
import * as Daemon from "./Daemon.js"
import type * as DaemonError from "./DaemonError.js"
import { ConfigurationError, DaemonFailure, RotationLost, UsageError } from "./DaemonError.js"
import * as Helper from "./Helper.js"
import * as Hooks from "./Hooks.js"
import * as Login from "./Login.js"
import * as Metrics from "./Metrics.js"
import * as Network from "./Network.js"
import * as Refresher from "./Refresher.js"
import * as Settings from "./Settings.js"
import * as SocketClient from "./SocketClient.js"
import * as SocketTrust from "./SocketTrust.js"
import * as SystemdUnit from "./SystemdUnit.js"
import * as Telemetry from "./Telemetry.js"
import * as Terminal from "./Terminal.js"
import * as TokenFile from "./TokenFile.js"
import * as Usage from "./Usage.js"
import * as Wire from "./Wire.js"

/** Every command fails only with `DaemonError.Failure`s, so a failure without an exit code does not compile. */
const failures = <A, R>(effect: Effect.Effect<A, DaemonError.Failure, R>) => effect

type CommonFlags = { readonly tokenFile?: Option.Option<string>; readonly socket?: Option.Option<string> }
type StravaFlags = CommonFlags & {
  readonly clientId?: Option.Option<string>
  readonly refreshMargin?: Option.Option<string>
  readonly stravaUrl?: Option.Option<string>
  readonly apiUrl?: Option.Option<string>
}

/** The values `Usage.parse` gives the command `name`'s handler. */
type FlagsOf<Name extends Usage.Name> = Usage.Values<(typeof Usage.commands)[Name]["flags"]>

const flagsOf = (flags: StravaFlags): Settings.Flags => ({
  ...Settings.noFlags,
  ...Object.fromEntries(
    Object.entries(flags).filter(([k, v]) => v !== undefined && k in Settings.noFlags)
  )
})

/** Every command logs to stderr; stdout is for what scripts read. */
const stderrLogger = Logger.withConsoleError(Logger.logfmtLogger)

const print = (line: string) => Console.log(line)
const say = (line: string) => Console.error(line)

/** The HTTP client and the OAuth service over a resolved config. */
const oauthLayerOf = (config: StravaConfig.StravaConfigShape) =>
  StravaOAuth.layer.pipe(
    Layer.provide(Layer.succeed(StravaConfig.StravaConfig, config)),
    Layer.provide(Network.layer)
  )

/** The HTTP client and the OAuth service, for the commands that talk to Strava. */
const oauthLayer = (flags: StravaFlags) => Layer.unwrapEffect(Effect.map(Settings.strava(flagsOf(flags)), oauthLayerOf))

/**
 * `--token-file` given without `--socket`: the command is about that file, not whatever file the default
 * socket's daemon serves, so it works on the file itself.
 */
const fileOnly = (flags: CommonFlags) =>
  flags.tokenFile !== undefined && Option.isSome(flags.tokenFile) &&
  (flags.socket === undefined || Option.isNone(flags.socket))

/** The account has no grant: log it in (core's message adds "Log in to Strava again (strava-auth login)."). */
const noTokenFile = (local: Settings.Local) =>
  new TokenSource.LoginRequired({
    reason: local.account === Accounts.defaultName
      ? `There is no token file at ${local.tokenFile}.`
      : `There is no token file at ${local.tokenFile}: the account ${local.account} is not logged in ` +
        `(${Accounts.loginCommand(local.account)}).`
  })

const tokenLine = (tokens: Token.TokenSet, asJson: boolean) =>
  asJson ? JSON.stringify(Refresher.tokenJson(tokens)) : Redacted.value(tokens.accessToken)

/**
 * The token from the file, refreshed by the engine (under the file's lock) when it is within the margin
 * (`force`: whatever is left). A transient failure with a still-valid token hands out the valid token. A set
 * Strava answered that cannot be written is written again for a while before this process gives up on it.
 */
const fromFile = (flags: StravaFlags, local: Settings.Local, force: boolean) =>
  Effect.gen(function*() {
    const store = yield* TokenFile.makeFileStore(local.tokenFile)
    const key = GrantStore.defaultKey
    const current = yield* store.get(key)
    if (Option.isNone(current)) {
      return yield* noTokenFile(local)
    }
    const tokens = current.value
    const now = yield* Clock.currentTimeMillis
    if (!force && !tokens.expiresWithin(local.margin, now)) return RefreshEngine.Outcome.Current({ tokens })
    // Strava rotated and the file would not take the answer: this process is its only holder now. It keeps
    // writing for a minute, not interruptible (Ctrl-C waits), then says plainly that the grant is lost.
    const saveForAWhile = (unsaved: RefreshEngine.GrantUnsaved) =>
      say(`warning: ${unsaved.error.message}; Strava has rotated the token: retrying the write for a minute.`).pipe(
        Effect.zipRight(
          RefreshEngine.persistUnsaved(unsaved).pipe(
            Effect.retry(Schedule.exponential("1 second").pipe(Schedule.upTo("60 seconds")))
          )
        ),
        Effect.provideService(GrantStore.GrantStore, store),
        Effect.uninterruptible,
        Effect.mapError((error) =>
          new RotationLost({
            detail: `Strava rotated the refresh token, but ${local.tokenFile} could not be written for a minute ` +
              `(${error.message}), so the new one is lost with this process. Fix the file or its directory, ` +
              "then run `strava-auth login`."
          })
        )
      )
    const outcome = yield* RefreshEngine.refreshOnce(key, { force, margin: local.margin }).pipe(
      Effect.provideService(GrantStore.GrantStore, store),
      Effect.provide(oauthLayer(flags)),
      Effect.catchIf(
        (e) =>
          e._tag !== "ConfigurationError" && e._tag !== "UsageError" && e._tag !== "GrantUnsaved" && e.transient &&
          !force &&
          !tokens.isExpired(now),
        (e) =>
          Effect.as(
            say(`warning: could not refresh (${e.message}); the current token is still valid.`),
            RefreshEngine.Outcome.Current({ tokens })
          )
      ),
      Effect.catchTag("GrantUnsaved", saveForAWhile)
    )
    return outcome
  })

const loginCommand = (flags: FlagsOf<"login">) =>
  failures(Effect.gen(function*() {
    const local = yield* Settings.local(flagsOf(flags))
    const scopes = yield* StravaScope.parse(flags.scope)
    if (flags.port < 0 || flags.port > 65535) {
      return yield* new UsageError({ detail: `--port takes 0-65535; got ${flags.port}.` })
    }
    const timeout = Settings.parseDuration(flags.timeout)
    if (Option.isNone(timeout) || Duration.greaterThan(timeout.value, Duration.hours(24))) {
      return yield* new UsageError({
        detail: `--timeout takes a duration up to 24h such as 5m or 90s; got "${flags.timeout}".`
      })
    }
    const config = yield* Settings.strava(flagsOf(flags))
    yield* Login.run({
      tokenFile: local.tokenFile,
      scopes,
      port: flags.port,
      openBrowser: !flags.noBrowser,
      forcePrompt: flags.forcePrompt,
      manual: flags.manual,
      timeout: timeout.value,
      say: (line) => process.stderr.write(`${line}\n`),
      print: (line) => process.stdout.write(`${line}\n`)
    }).pipe(Effect.provide(oauthLayerOf(config)))
    // The account remembers its own app (the id and the secret file's path, never the secret), so every later
    // command and the daemon refresh it with that app.
    if (Option.isSome(flags.clientSecretFile)) {
      const clientSecretFile = Path.resolve(flags.clientSecretFile.value)
      yield* Settings.writeAccountSettings(local.defaultTokenFile, local.account, {
        clientId: config.clientId,
        clientSecretFile
      })
      yield* say(
        `The account ${local.account} uses the app ${config.clientId} from now on (its secret read from ` +
          `${clientSecretFile} each time; ${Accounts.settingsFileOf(local.defaultTokenFile, local.account)}).`
      )
    }
  }))

const daemonCommand = (daemonFlags: FlagsOf<"daemon">) =>
  failures(Effect.gen(function*() {
    // The daemon serves every account; its own settings are the account default's (STRAVA_AUTH_ACCOUNT, which a
    // hook may have in its environment, names nothing here).
    const flags = { ...daemonFlags, account: Option.some(Accounts.defaultName) }
    const local = yield* Settings.local(flagsOf(flags))
    const format = Option.isSome(flags.logFormat)
      ? flags.logFormat.value
      : yield* Config.literal("logfmt", "json")("STRAVA_AUTH_LOG_FORMAT").pipe(
        Config.withDefault("logfmt" as const),
        Effect.mapError((e) => new UsageError({ detail: `STRAVA_AUTH_LOG_FORMAT: ${e.message}` }))
      )
    const logger = Logger.replace(
      stderrLogger,
      Logger.withConsoleError(format === "json" ? Logger.jsonLogger : Logger.logfmtLogger)
    )
    const config = yield* Settings.strava(flagsOf(flags))
    const text = (flag: Option.Option<string>, variable: string) =>
      Settings.pick(flag, variable).pipe(Effect.orElseSucceed(() => Option.none<string>()))
    const listenText = yield* text(flags.metricsListen, "STRAVA_AUTH_METRICS_LISTEN")
    const metricsListen = Option.isSome(listenText) ? Metrics.parseListen(listenText.value) : undefined
    if (Option.isSome(listenText) && metricsListen === undefined) {
      return yield* new UsageError({
        detail: `--metrics-listen (or STRAVA_AUTH_METRICS_LISTEN) takes HOST:PORT, such as 127.0.0.1:9464; ` +
          `got "${listenText.value}".`
      })
    }
    const intervalText = yield* text(flags.loginNotifyInterval, "STRAVA_AUTH_LOGIN_NOTIFY_INTERVAL")
    const interval = Option.isSome(intervalText)
      ? Settings.parseDuration(intervalText.value)
      : Option.some(Duration.minutes(15))
    if (Option.isNone(interval) || Duration.lessThan(interval.value, Duration.seconds(1))) {
      return yield* new UsageError({
        detail: `--login-notify-interval (or STRAVA_AUTH_LOGIN_NOTIFY_INTERVAL) takes a duration of a second or ` +
          `more, such as 15m or 1h; got "${Option.getOrElse(intervalText, () => "")}".`
      })
    }
    const timeoutText = yield* text(Option.none(), "STRAVA_AUTH_HOOK_TIMEOUT")
    const hookTimeout = Option.isSome(timeoutText)
      ? Settings.parseDuration(timeoutText.value)
      : Option.some(Duration.minutes(1))
    if (Option.isNone(hookTimeout) || Duration.lessThan(hookTimeout.value, Duration.millis(100))) {
      return yield* new UsageError({
        detail: `STRAVA_AUTH_HOOK_TIMEOUT takes a duration such as 30s or 2m; got "${
          Option.getOrElse(timeoutText, () => "")
        }".`
      })
    }
    const groupText = yield* text(flags.socketGroup, "STRAVA_AUTH_SOCKET_GROUP")
    const socketGroup = Option.isSome(groupText) ? SocketTrust.groupId(groupText.value.trim()) : undefined
    if (Option.isSome(groupText) && socketGroup === undefined) {
      return yield* new ConfigurationError({
        detail: `--socket-group (or STRAVA_AUTH_SOCKET_GROUP): there is no group "${groupText.value}" ` +
          "(getent group lists them; groupadd makes one)."
      })
    }
    if (Option.isSome(flags.loginNotifyInterval) && Option.isNone(flags.onLoginNeeded)) {
      return yield* new UsageError({
        detail: "--login-notify-interval is how often --on-login-needed runs again: give --on-login-needed too."
      })
    }
    const hooks = {
      timeout: hookTimeout.value,
      onToken: Option.getOrUndefined(yield* text(flags.onToken, "STRAVA_AUTH_ON_TOKEN")),
      onLoginNeeded: Option.getOrUndefined(yield* text(flags.onLoginNeeded, "STRAVA_AUTH_ON_LOGIN_NEEDED")),
      onError: Option.getOrUndefined(yield* text(flags.onError, "STRAVA_AUTH_ON_ERROR")),
      loginNotifyInterval: interval.value
    }
    yield* Effect.gen(function*() {
      const http = yield* HttpClient.HttpClient
      const fs = yield* FileSystem.FileSystem
      // SIGHUP: the same resolution again for each account (a rotated secret file, say), with the same HTTP client.
      const reload = (account: string) =>
        Effect.flatMap(
          Settings.strava({ ...flagsOf(flags), account: Option.some(account) }),
          (next) => StravaOAuth.make.pipe(Effect.provideService(StravaConfig.StravaConfig, next))
        ).pipe(
          Effect.provideService(HttpClient.HttpClient, http),
          Effect.provideService(FileSystem.FileSystem, fs)
        )
      // Refreshes run in a detached helper process, so that killing the daemon never loses a rotation; each
      // account's helper reads that account's settings (its own app, if it has one).
      // The daemon's flags reach it as the variables they stand for: an account's own app wins over them.
      const passOn = (name: string, value: Option.Option<string>) => Option.isSome(value) ? { [name]: value.value } : {}
      const executor = (account: { readonly name: string; readonly tokenFile: string }) =>
        Helper.executor({
          tokenFile: local.defaultTokenFile,
          flags: [`--account=${account.name}`],
          env: { ...passOn("STRAVA_CLIENT_ID", flags.clientId), ...passOn("STRAVA_BASE_URL", flags.stravaUrl) }
        }).pipe(Effect.provideServiceEffect(GrantStore.GrantStore, TokenFile.makeFileStore(account.tokenFile)))
      yield* Daemon.run(local, { reload, executor, metricsListen, hooks, socketGroup }).pipe(
        Effect.provide(StravaOAuth.layer),
        Effect.provideService(StravaConfig.StravaConfig, config)
      )
    }).pipe(
      Effect.provide(Network.layer),
      Effect.provide(logger),
      Logger.withMinimumLogLevel(LogLevel.Info)
    )
  }))

const tokenCommand = (flags: FlagsOf<"token">) =>
  failures(Effect.gen(function*() {
    const local = yield* Settings.local(flagsOf(flags))
    // Settings for a refresh, or a token file named without a socket: this process works on the file itself
    // (the daemon has its own settings, and its own file).
    const own = Option.isSome(flags.clientId) || Option.isSome(flags.refreshMargin) ||
      Option.isSome(flags.stravaUrl) || fileOnly(flags)
    const reply = own
      ? { _tag: "Down" as const }
      : yield* SocketClient.request(local.socket, "GET", Accounts.socketPath("/token.json", local.account))
    // A daemon that does not serve the account (yet: a login a moment ago) leaves it to the file.
    if (reply._tag === "Reply" && !SocketClient.unknownAccount(reply)) {
      const body = reply.status === 200 ? Wire.decodeTokenJson(reply.body) : Option.none()
      if (Option.isNone(body)) return yield* SocketClient.errorOf(reply.status, reply.body)
      return yield* print(flags.json ? reply.body : body.value.access_token)
    }
    const { tokens } = yield* fromFile(flags, local, false)
    yield* print(tokenLine(tokens, flags.json))
  }))

/** The access token `token` would print: the daemon's, else the file's (refreshed under its lock when due). */
const currentToken = (flags: StravaFlags, local: Settings.Local) =>
  Effect.gen(function*() {
    const reply = fileOnly(flags)
      ? { _tag: "Down" as const }
      : yield* SocketClient.request(local.socket, "GET", Accounts.socketPath("/token.json", local.account))
    if (reply._tag === "Reply" && !SocketClient.unknownAccount(reply)) {
      const body = reply.status === 200 ? Wire.decodeTokenJson(reply.body) : Option.none()
      if (Option.isNone(body)) return yield* SocketClient.errorOf(reply.status, reply.body)
      return body.value.access_token
    }
    const { tokens } = yield* fromFile(flags, local, false)
    return Redacted.value(tokens.accessToken)
  })

const dumpCommand = (flags: FlagsOf<"dump">) =>
  failures(Effect.gen(function*() {
    const local = yield* Settings.local(flagsOf(flags))
    if (process.stdout.isTTY === true && !flags.force) {
      return yield* new UsageError({
        detail: "refusing to write the grant (its refresh token) to a terminal. Pipe it to `strava-auth restore` " +
          "(e.g. strava-auth dump | ssh other-host strava-auth restore), or add --force."
      })
    }
    // Under the file's lock: no refresh can rotate the grant between the dump and setting it aside.
    yield* TokenFile.withLock(
      local.tokenFile,
      Effect.gen(function*() {
        const current = yield* TokenFile.read(local.tokenFile)
        if (Option.isNone(current)) {
          return yield* noTokenFile(local)
        }
        const now = yield* Clock.currentTimeMillis
        const text = TokenFile.encode(current.value, now)
        yield* Effect.async<void, DaemonFailure>((resume) => {
          process.stdout.write(text, (error) =>
            resume(
              error === undefined || error === null
                ? Effect.void
                : Effect.fail(
                  new DaemonFailure({
                    detail: `the grant could not be written out (${error.message}); it stays here.`,
                    transient: true
                  })
                )
            ))
        })
        if (flags.copy) {
          return yield* say(
            "Copied: the grant is still here too. Whichever copy refreshes first invalidates the other."
          )
        }
        const aside = `${local.tokenFile}.moved-${new Date(now).toISOString().replace(/[:.]/g, "-")}`
        yield* Effect.tryPromise({
          try: () => Fs.promises.rename(local.tokenFile, aside),
          catch: (error) =>
            new DaemonFailure({
              detail: `the grant was written out, but ${local.tokenFile} could not be set aside ` +
                `(${(error as Error).message}): delete it, or this machine goes on refreshing the same grant.`,
              transient: false
            })
        })
        yield* say(
          `Moved: the grant was written to stdout whole and ${local.tokenFile} set aside as ${aside}, so this ` +
            "machine no longer refreshes it (a daemon here now waits for a login). If the restore on the other " +
            `side failed, rename it back: mv ${aside} ${local.tokenFile}`
        )
      })
    )
  }))

const restoreCommand = (flags: FlagsOf<"restore">) =>
  failures(Effect.gen(function*() {
    const local = yield* Settings.local(flagsOf(flags))
    const there = () =>
      new UsageError({
        detail: `${local.tokenFile} is there already; restoring would replace that grant. Add --force to ` +
          "replace it (revoke it first if it is still used), or give another --token-file."
      })
    // Before reading anything: a dump piped in then fails to write (EPIPE) more often than not.
    if (!flags.force && TokenFile.occupied(local.tokenFile)) return yield* there()
    const text = yield* Effect.tryPromise({
      try: async () => {
        const chunks: Array<Buffer> = []
        let size = 0
        for await (const chunk of process.stdin) {
          size += (chunk as Buffer).length
          if (size > 64 * 1024) throw new Error("more than 64 KiB")
          chunks.push(chunk as Buffer)
        }
        return Buffer.concat(chunks).toString("utf8")
      },
      catch: (error) => new UsageError({ detail: `cannot read the grant from stdin: ${(error as Error).message}.` })
    })
    if (text.trim() === "") {
      return yield* new UsageError({ detail: "stdin is empty: pipe `strava-auth dump` into it." })
    }
    const tokens = yield* TokenFile.decode("stdin", text)
    if (!(yield* TokenFile.restore(local.tokenFile, tokens, flags.force))) return yield* there()
    yield* say(
      `Restored the grant of athlete ${tokens.athlete?.id ?? "?"} to ${local.tokenFile} (0600); a daemon here ` +
        "picks it up."
    )
  }))

/** The signals `exec` passes to its command. */
const passedSignals: ReadonlyArray<NodeJS.Signals> = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"]

const execCommand = (flags: FlagsOf<"exec"> & { readonly command?: ReadonlyArray<string> }) =>
  failures(Effect.gen(function*() {
    const local = yield* Settings.local(flagsOf(flags))
    const onChange = flags.onChange === "restart" || flags.onChange === "none"
      ? flags.onChange
      : /^signal:(SIG)?[A-Z0-9]+$/.test(flags.onChange) &&
          `SIG${flags.onChange.slice("signal:".length).replace(/^SIG/, "")}` in Os.constants.signals
      ? `SIG${flags.onChange.slice("signal:".length).replace(/^SIG/, "")}` as NodeJS.Signals
      : undefined
    if (onChange === undefined) {
      return yield* new UsageError({
        detail: `--on-change takes restart, none or signal:NAME (such as signal:HUP); got "${flags.onChange}".`
      })
    }
    const [file, ...args] = flags.command ?? []
    let token = yield* currentToken(flags, local)
    const runtime = yield* Effect.runtime<FileSystem.FileSystem>()
    // The command's exit ends this process with its status; a restart's exit does not. Uninterruptible: the
    // runtime's own SIGINT/SIGTERM handling must not end this process before the command, which gets the signal.
    yield* Effect.uninterruptible(Effect.async<never>(() => {
      const exit = (code: number) => {
        clearInterval(timer)
        for (const [name, handler] of handlers) process.off(name, handler)
        process.exit(code)
      }
      let child: ChildProcess.ChildProcess
      let restarting = false
      const start = () => {
        child = ChildProcess.spawn(file!, args, {
          stdio: "inherit",
          // the daemon's secret and plumbing withheld, as from hooks; the token is what CMD is run for
          env: Hooks.environment(process.env, { STRAVA_ACCESS_TOKEN: token, STRAVA_AUTH_ACCOUNT: local.account })
        })
        child.once("error", (error) => {
          process.stderr.write(`strava-auth exec: cannot run ${file}: ${error.message}\n`)
          exit(127)
        })
        child.once("exit", (exitCode, signal) => {
          if (restarting) {
            restarting = false
            return start()
          }
          exit(exitCode ?? 128 + (Os.constants.signals[signal ?? "SIGTERM"] ?? 15))
        })
      }
      const handlers = passedSignals.map((name) => [name, () => void child.kill(name)] as const)
      for (const [name, handler] of handlers) process.on(name, handler)
      // The token now, when the token file's directory changes (the daemon or a refresh wrote it) and every
      // 15 s; when it changed, the command hears of it.
      let checking = false
      const check = () => {
        if (checking) return
        checking = true
        Runtime.runPromise(runtime)(Effect.either(currentToken(flags, local))).then((next) => {
          checking = false
          if (next._tag === "Left" || next.right === token) return
          token = next.right
          if (onChange === "restart") {
            restarting = true
            child.kill("SIGTERM")
          } else if (onChange !== "none") child.kill(onChange)
        })
      }
      const timer = setInterval(check, 15_000)
      try {
        // a moment after the file changes: the daemon serves the new token once it is on disk
        let soon: ReturnType<typeof setTimeout> | undefined
        Fs.watch(Path.dirname(local.tokenFile), { persistent: false }, () => {
          if (soon !== undefined) clearTimeout(soon)
          soon = setTimeout(check, 250)
        }).on("error", () => {})
      } catch {
        // no directory yet: the 15 s check covers it
      }
      start()
    }))
  }))

/** One account's part of `status`: the file, and what the daemon says of it. */
const statusOf = (local: Settings.Local, asked: boolean) =>
  Effect.gen(function*() {
    const file = yield* Effect.either(TokenFile.read(local.tokenFile))
    const reply = asked
      ? yield* SocketClient.request(local.socket, "GET", Accounts.socketPath("/health", local.account))
      : { _tag: "Down" as const, reason: "not asked" }
    const health = reply._tag === "Reply" ? Option.getOrUndefined(Wire.decodeHealth(reply.body)) : undefined
    const now = yield* Clock.currentTimeMillis
    const tokens = file._tag === "Right" ? Option.getOrUndefined(file.right) : undefined
    const report = {
      version: Wire.version,
      account: local.account,
      token_file: local.tokenFile,
      socket: local.socket,
      athlete: tokens?.athlete ?? null,
      scope: tokens?.scopes.join(",") ?? null,
      expires_at: tokens?.expiresAt ?? null,
      expires_in_seconds: tokens === undefined ? null : Math.floor(tokens.remainingMillis(now) / 1000),
      file_error: file._tag === "Left" ? file.left.message : null,
      daemon: !asked
        ? "not asked"
        : reply._tag === "Down"
        ? "down"
        : reply.status === 404
        ? "up, not serving this account yet"
        : "up",
      daemon_status: health?.status ?? null,
      last_refresh_at: health?.last_refresh_at ?? null,
      next_refresh_at: health?.next_refresh_at ?? null,
      consecutive_failures: health?.consecutive_failures ?? null,
      last_error: health?.last_error ?? null
    }
    // The athlete's name and the daemon's words come from outside: no terminal controls reach the screen.
    const name = Terminal.sanitizeForTerminal(
      [tokens?.athlete?.firstname, tokens?.athlete?.lastname].filter(Boolean).join(" ")
    )
    const lines = [
      ["account", local.account],
      ["athlete", tokens === undefined ? "-" : `${name || "?"} (${tokens.athlete?.id ?? "?"})`],
      ["scopes", report.scope ?? "-"],
      ["token", tokens === undefined ? (report.file_error ?? "none") : TokenFile.describeExpiry(tokens, now)],
      [
        "daemon",
        !asked
          ? "not asked (--token-file without --socket)"
          : report.daemon === "up"
          ? `up (${String(report.daemon_status)})`
          : report.daemon
      ],
      ["last refresh", String(report.last_refresh_at ?? "-")],
      ["next refresh", String(report.next_refresh_at ?? "-")],
      ["last error", Terminal.sanitizeForTerminal(report.last_error ?? "-")],
      ["token file", local.tokenFile],
      ["socket", local.socket]
    ]
    // What makes `status` exit non-zero for this account, if anything.
    const verdict: Option.Option<DaemonError.Failure> = file._tag === "Left"
      ? Option.some(file.left)
      : tokens === undefined
      ? Option.some(noTokenFile(local))
      : report.daemon_status === "needs_login"
      ? Option.some(new TokenSource.LoginRequired({ reason: String(report.last_error ?? "No token.") }))
      : tokens.isExpired(now)
      ? Option.some(new TokenSource.TokenUnavailable({ reason: "the token has expired." }))
      : Option.none()
    return { report, text: lines.map(([k, v]) => `${`${k}:`.padEnd(14)}${v}`).join("\n"), verdict }
  })

const statusCommand = (flags: FlagsOf<"status">) =>
  failures(Effect.gen(function*() {
    const local = yield* Settings.local(flagsOf(flags))
    // One account when one is named (--account, STRAVA_AUTH_ACCOUNT); else every account there is.
    const named = Option.isSome(yield* Settings.pick(flags.account, "STRAVA_AUTH_ACCOUNT").pipe(Effect.orDie))
    const names = named ? [local.account] : Accounts.list(local.defaultTokenFile) ?? [local.account]
    // A token file named without a socket: the default socket's daemon serves another file; not asked.
    const asked = !fileOnly(flags)
    const shown = yield* Effect.forEach(names, (account) =>
      statusOf({ ...local, account, tokenFile: Accounts.tokenFileOf(local.defaultTokenFile, account) }, asked))
    // The first account's fields at the top (a script that reads one account keeps working), and every account.
    const reports = shown.map((s) =>
      s.report
    )
    if (flags.json) yield* print(JSON.stringify({ ...reports[0]!, accounts: reports }, null, 2))
    else yield* print(shown.map((s) => s.text).join("\n\n"))
    const failed = shown.find((s) => Option.isSome(s.verdict))
    if (failed !== undefined && Option.isSome(failed.verdict)) return yield* Effect.fail(failed.verdict.value)
  }))

const refreshCommand = (flags: FlagsOf<"refresh">) =>
  failures(Effect.gen(function*() {
    const needs = (given: boolean, flag: string, rule: string) =>
      given ? Effect.fail(new UsageError({ detail: `${flag} ${rule}` })) : Effect.void
    yield* needs(flags.report && !flags.local, "--report", "needs --local.")
    yield* needs(flags.report && flags.json, "--json", "is not for --report, which prints its JSON line anyway.")
    yield* needs(flags.ifDue && !flags.local, "--if-due", "needs --local.")
    yield* needs(
      Option.isSome(flags.clientId) && !flags.local,
      "--client-id",
      "needs --local (the daemon refreshes with its own settings)."
    )
    yield* needs(
      Option.isSome(flags.stravaUrl) && !flags.local,
      "--strava-url",
      "needs --local (the daemon refreshes with its own settings)."
    )
    yield* needs(
      Option.isSome(flags.refreshMargin) && !flags.ifDue,
      "--refresh-margin",
      "needs --local --if-due (otherwise the refresh happens whatever is left)."
    )
    yield* needs(Option.isSome(flags.socket) && flags.local, "--socket", "asks the daemon, so not with --local.")
    const local = yield* Settings.local(flagsOf(flags))
    if (flags.local && flags.report) {
      // The daemon's helper: one run of the engine's refresh, one report line; the daemon decides what next.
      const store = yield* TokenFile.makeFileStore(local.tokenFile)
      const result = yield* Effect.either(
        RefreshEngine.refreshOnce(GrantStore.defaultKey, {
          force: !flags.ifDue,
          margin: local.margin,
          seenFingerprint: process.env[Helper.seenVariable]
        }).pipe(
          Effect.provideService(GrantStore.GrantStore, store),
          Effect.provide(
            oauthLayer(flags).pipe(
              Layer.catchAll((e) => Layer.fail(new RefreshEngine.RefreshAborted({ detail: e.message })))
            )
          )
        )
      )
      yield* print(Helper.reportLine(result))
      // The exit code says the same as the report, for a person running it by hand.
      if (result._tag === "Left") return yield* Effect.fail(result.left)
      return
    }
    // Keep trying transient failures for about half a minute, then give up with the reason.
    const patience = Schedule.exponential("1 second").pipe(Schedule.jittered, Schedule.upTo("25 seconds"))
    const transient = (e: object) => "transient" in e && e.transient === true
    // On a terminal, each failed attempt is shown: what failed, where it went, and when the next one goes.
    const shown = process.stderr.isTTY === true
    const patiently = <A, E extends { readonly message: string }, R>(effect: Effect.Effect<A, E, R>, target: string) =>
      Effect.suspend(() => {
        let attempt = 0
        let again = false
        return effect.pipe(
          Effect.tapError((e) => {
            again = transient(e)
            return shown && again ? say(`attempt ${++attempt}: ${target}: ${e.message}`) : Effect.void
          }),
          Effect.retry({
            while: transient,
            schedule: patience.pipe(Schedule.tapOutput((delay) =>
              shown && again
                ? say(`  trying again in about ${Math.max(1, Math.round(Duration.toSeconds(delay)))}s`)
                : Effect.void
            ))
          })
        )
      })
    const stravaTarget = Effect.map(
      Effect.option(Settings.strava(flagsOf(flags))),
      (config) => Option.match(config, { onNone: () => "Strava", onSome: (c) => `POST ${c.baseUrl}/oauth/token` })
    )
    const viaDaemon = Effect.gen(function*() {
      const reply = yield* SocketClient.request(
        local.socket,
        "POST",
        Accounts.socketPath("/refresh", local.account),
        25_000
      )
      // no daemon, or one that does not serve the account (yet): this process refreshes the file
      if (reply._tag === "Down" || SocketClient.unknownAccount(reply)) {
        return Option.none<{ readonly body: string; readonly reply: Wire.RefreshReply }>()
      }
      const refreshed = reply.status === 200 ? Wire.decodeRefreshReply(reply.body) : Option.none()
      if (Option.isSome(refreshed)) return Option.some({ body: reply.body, reply: refreshed.value })
      const error = Wire.decodeErrorReply(reply.body)
      return yield* Option.isSome(error) && error.value.transient === true
        ? new TokenSource.TokenUnavailable({ reason: error.value.message })
        : SocketClient.errorOf(reply.status, reply.body)
    })
    const fromDaemon = flags.local || fileOnly(flags)
      ? Option.none<{ readonly body: string; readonly reply: Wire.RefreshReply }>()
      : yield* patiently(viaDaemon, `the daemon at ${local.socket}`)
    if (Option.isSome(fromDaemon)) {
      const { body, reply } = fromDaemon.value
      yield* say(`${reply.message} It expires at ${new Date(reply.expires_at * 1000).toISOString()}.`)
      if (flags.json) yield* print(body)
      return
    }
    const outcome = yield* patiently(fromFile(flags, local, !flags.ifDue), yield* stravaTarget)
    const tokens = outcome.tokens
    const expires = new Date(tokens.expiresAt * 1000).toISOString()
    const dueNow = tokens.expiresWithin(local.margin, yield* Clock.currentTimeMillis)
    yield* say(
      outcome._tag === "Current"
        ? dueNow
          ? `Not refreshed; the current token stays valid until ${expires}.`
          : `Not due: the token expires at ${expires}, more than the refresh margin ` +
            `(${Duration.format(local.margin)}) away; nothing to do.`
        : Redacted.value(outcome.previous.accessToken) === Redacted.value(tokens.accessToken)
        ? `Asked Strava in this process; it returned the same token (it hands out a new one only when less ` +
          `than an hour is left). It expires at ${expires}.`
        : `Refreshed in this process; the new token expires at ${expires}.`
    )
    if (flags.json) yield* print(tokenLine(tokens, true))
  }))

const revokeCommand = (flags: FlagsOf<"revoke">) =>
  failures(Effect.gen(function*() {
    const local = yield* Settings.local(flagsOf(flags))
    const current = yield* TokenFile.read(local.tokenFile)
    if (Option.isNone(current)) {
      // an account left with only its settings (after a dump, or a login that failed) is removed all the same
      if (local.account !== Accounts.defaultName) {
        yield* Settings.removeAccountSettings(local.defaultTokenFile, local.account)
      }
      return yield* say(`No token file at ${local.tokenFile}; nothing to revoke.`)
    }
    const tokens = current.value
    yield* Effect.gen(function*() {
      const oauth = yield* StravaOAuth.StravaOAuth
      yield* oauth.revoke(tokens.refreshToken, "refresh_token").pipe(
        // Before 2026-06-01 (or on a server without /oauth/revoke) the legacy endpoint does the job, until its
        // own retirement (2027-06-01, StravaOAuth.deauthorizeRetiredAt): after that, revoke's error stands.
        Effect.catchIf(
          (e) => e._tag === "UnexpectedResponse" && e.reason === "Status",
          (e) =>
            Effect.flatMap(
              Clock.currentTimeMillis,
              (now) => now < StravaOAuth.deauthorizeRetiredAt ? oauth.deauthorize(tokens.accessToken) : Effect.fail(e)
            )
        ),
        // Already revoked at Strava is what we want.
        Effect.catchIf((e) => e._tag === "InvalidGrant" || e._tag === "Unauthorized", () => Effect.void)
      )
    }).pipe(Effect.provide(oauthLayer(flags)))
    yield* TokenFile.withLock(local.tokenFile, TokenFile.remove(local.tokenFile))
    // An account other than default is gone with its grant (a daemon stops serving it); default stays, waiting.
    if (local.account !== Accounts.defaultName) {
      yield* Settings.removeAccountSettings(local.defaultTokenFile, local.account)
      return yield* say(
        `Revoked at Strava and deleted the account ${local.account} (${local.tokenFile}). ` +
          `\`${Accounts.loginCommand(local.account)}\` adds it again.`
      )
    }
    yield* say(`Revoked at Strava and deleted ${local.tokenFile}. Run \`strava-auth login\` to log in again.`)
  }))

const systemdCommand = (flags: FlagsOf<"systemdUnit">) =>
  failures(Effect.gen(function*() {
    if (flags.user && flags.system) return yield* new UsageError({ detail: "choose one of --user and --system." })
    const refusal = flags.system ? SystemdUnit.systemRefusal() : undefined
    if (refusal !== undefined) return yield* new ConfigurationError({ detail: refusal })
    yield* print(SystemdUnit.render(flags.system ? "system" : "user", SystemdUnit.thisInstallation()).trimEnd())
  }))

// Push subscriptions (webhooks) for a web app: the app's id and secret, Strava's API; no token file.
const webhookCreate = (flags: FlagsOf<"webhookCreate">) =>
  failures(Effect.gen(function*() {
    const callback = StravaConfig.validateUrl(
      flags.callbackUrl,
      "--callback-url",
      "https://app.example.com/strava/webhook"
    )
    if (callback._tag === "Left") return yield* new UsageError({ detail: callback.left })
    const fs = yield* FileSystem.FileSystem
    const fromEnv = yield* Config.option(Config.redacted("STRAVA_WEBHOOK_VERIFY_TOKEN")).pipe(Effect.orDie)
    const verifyToken = Option.isSome(flags.verifyTokenFile)
      ? Redacted.make(
        (yield* fs.readFileString(flags.verifyTokenFile.value).pipe(
          Effect.mapError(() =>
            new UsageError({
              detail: `cannot read the verify token file ${flags.verifyTokenFile.pipe(Option.getOrElse(() => ""))}.`
            })
          )
        )).trim()
      )
      : Option.getOrUndefined(fromEnv)
    if (verifyToken === undefined || Redacted.value(verifyToken) === "") {
      return yield* new UsageError({
        detail: "no verify token: set STRAVA_WEBHOOK_VERIFY_TOKEN (the one your app's webhook route checks) " +
          "or pass --verify-token-file PATH."
      })
    }
    const result = yield* PushSubscription.create({ callbackUrl: callback.right, verifyToken }).pipe(
      Effect.provide(oauthLayer(flags)),
      Effect.catchTags({
        SubscriptionExists: (error) => Effect.fail(new UsageError({ detail: error.message })),
        CallbackRefused: (error) => Effect.fail(new ConfigurationError({ detail: error.message }))
      })
    )
    yield* say(
      result.created
        ? `Subscribed: push subscription ${result.id} sends events to ${result.callbackUrl}.`
        : `Already subscribed: push subscription ${result.id} sends events to ${result.callbackUrl}.`
    )
    yield* print(String(result.id))
  }))

const webhookView = (flags: FlagsOf<"webhookView">) =>
  failures(Effect.gen(function*() {
    const current = yield* PushSubscription.view.pipe(Effect.provide(oauthLayer(flags)))
    if (Option.isNone(current)) {
      if (flags.json) yield* print("null")
      return yield* say("This app has no push subscription (strava-auth webhook create subscribes one).")
    }
    const s = current.value
    yield* flags.json
      ? print(JSON.stringify({ id: s.id, callback_url: s.callback_url, created_at: s.created_at ?? null }))
      : print(`${s.id} ${s.callback_url}`)
  }))

const webhookDelete = (flags: FlagsOf<"webhookDelete">) =>
  failures(Effect.gen(function*() {
    const deleted = yield* PushSubscription.remove(Option.getOrUndefined(flags.id)).pipe(
      Effect.provide(oauthLayer(flags))
    )
    yield* say(
      Option.match(deleted, {
        onNone: () => "This app has no push subscription; nothing to delete.",
        onSome: (id) => `Deleted push subscription ${id}: Strava sends no more events.`
      })
    )
  }))

const handlers: {
  readonly [Name in Usage.Name]: (
    flags: FlagsOf<Name>
  ) => Effect.Effect<void, DaemonError.Failure, NodeContext.NodeContext>
} = {
  login: loginCommand,
  daemon: daemonCommand,
  token: tokenCommand,
  status: statusCommand,
  refresh: refreshCommand,
  revoke: revokeCommand,
  systemdUnit: systemdCommand,
  exec: execCommand,
  dump: dumpCommand,
  restore: restoreCommand,
  webhook: () => Effect.void, // parse never runs it: `webhook` alone is a usage error
  webhookCreate,
  webhookView,
  webhookDelete
}

/**
 * The CLI program for `process.argv`.
 *
 * @since 0.1.0
 * @category running
 */
export const cli = (argv: ReadonlyArray<string>) => {
  const parsed = Usage.parse(argv.slice(2), Usage.styleFor(process.stdout.isTTY === true, process.env))
  const program: Effect.Effect<void, DaemonError.Failure, NodeContext.NodeContext> =
    parsed._tag === "Help" || parsed._tag === "Version"
      ? print(parsed.text)
      : parsed._tag === "Invalid"
      ? Effect.fail(new UsageError({ detail: parsed.problem, command: parsed.command }))
      : (handlers[parsed.name] as (
        flags: unknown
      ) => Effect.Effect<void, DaemonError.Failure, NodeContext.NodeContext>)(parsed.values).pipe(
        // A usage error found by the command names the command, as the parser's do.
        Effect.mapError((e) =>
          e._tag === "UsageError" && e.command === undefined
            ? new UsageError({ detail: e.detail, command: Usage.commands[parsed.name].name })
            : e
        )
      )
  return program.pipe(
    // Spans over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set (flushed as the command ends).
    Effect.provide(Telemetry.layer()),
    Effect.provide(NodeContext.layer),
    // Commands other than the daemon log only warnings and errors, on stderr.
    Logger.withMinimumLogLevel(LogLevel.Warning),
    Effect.provide(Logger.replace(Logger.defaultLogger, stderrLogger))
  )
}
