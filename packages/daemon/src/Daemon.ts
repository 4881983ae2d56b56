/**
 * `strava-auth daemon`: a refresher per account and the socket server, wired together.
 *
 * Accounts (`Accounts`): the account `default` always, and every account found beside it (`accounts/`), each with
 * its own refresher (its own loop, its own engine, its own helper processes with the account's own app), so one
 * account's failure, backoff or slow refresh never delays another's. A change in the token file's directory or
 * in `accounts/` re-lists them: an account logged in while the daemon runs is started, one whose files are gone
 * is stopped.
 *
 * Start-up order (so readiness means something): make the token file's directory, load the file, bind the
 * socket (refusing to start while another daemon answers on it), watch the directory, then log `started`.
 * SIGTERM/SIGINT interrupt the loop: an in-flight refresh finishes its write first (it is uninterruptible),
 * then the socket is closed and removed, and the process exits 0. SIGHUP re-reads the configuration and the token
 * file: a valid configuration lifts an app-wide refusal (Strava refused the app: a wrong secret, an inactive app)
 * and retries at once; an invalid one is logged and changes nothing here. Each refresh helper reads the
 * configuration anew when it starts (the secret from the environment, its file or systemd's credential), so a
 * rotated secret file is used at the next refresh, SIGHUP or not; the in-process refresher (library and tests)
 * switches to the reloaded client.
 *
 * @since 0.1.0
 */
import * as Path from "node:path"

import type * as FileSystem from "@effect/platform/FileSystem"
import type { RefreshEngine, StravaOAuth } from "@strava-auth/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Runtime from "effect/Runtime"

import * as Accounts from "./Accounts.js"
import type { UsageError } from "./DaemonError.js"
import { ConfigurationError } from "./DaemonError.js"
import * as DirectoryWatch from "./DirectoryWatch.js"
import * as Hooks from "./Hooks.js"
import * as Metrics from "./Metrics.js"
import * as Notify from "./Notify.js"
import * as Refresher from "./Refresher.js"
import type { Local } from "./Settings.js"
import * as SocketServer from "./SocketServer.js"
import * as TokenFile from "./TokenFile.js"

/**
 * One account the daemon serves.
 *
 * @since 0.3.0
 * @category models
 */
export interface Account {
  readonly name: string
  readonly refresher: Refresher.Refresher
}

/**
 * The command that logs an account in, for messages and `STRAVA_AUTH_LOGIN_COMMAND`.
 *
 * @since 0.3.0
 * @category messages
 */
export const loginCommandOf = (defaultTokenFile: string, account: string): string =>
  `${Accounts.loginCommand(account)} --token-file '${defaultTokenFile.replace(/'/g, "'\\''")}'`

/**
 * Runs until interrupted.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (
  settings: Local,
  options: {
    readonly recheck?: Duration.Duration
    /** Builds an account's Strava client anew from the configuration, for SIGHUP. */
    readonly reload?: (account: string) => Effect.Effect<StravaOAuth.StravaOAuthShape, ConfigurationError | UsageError>
    /** Where an account's refreshes run: a helper process (`Helper.executor`); in this process when absent. */
    readonly executor?: (
      account: { readonly name: string; readonly tokenFile: string }
    ) => Effect.Effect<RefreshEngine.Executor, never, FileSystem.FileSystem>
    /** Also serve `/metrics` alone over TCP here (`--metrics-listen`). */
    readonly metricsListen?: { readonly host: string; readonly port: number } | undefined
    /** systemd's notify protocol; from the environment (`NOTIFY_SOCKET`, `WATCHDOG_USEC`) by default. */
    readonly notifier?: Notify.Notifier | undefined
    /** Commands to run on a new token, a login needed, a failure (`Hooks`). */
    readonly hooks?: Hooks.Options | undefined
    /** A group whose members may use the socket (`--socket-group`). */
    readonly socketGroup?: number | undefined
  } = {}
) =>
  Effect.gen(function*() {
    const defaultTokenFile = settings.defaultTokenFile
    yield* TokenFile.ensureDirectory(Path.dirname(defaultTokenFile))
    const notifier = options.notifier ?? Notify.fromEnvironment()
    const clock = yield* Effect.clock
    const scope = yield* Effect.scope
    const runtime = yield* Effect.runtime<StravaOAuth.StravaOAuth | FileSystem.FileSystem>()
    const accounts = new Map<string, Account & { fiber: Fiber.RuntimeFiber<never>; ticked: boolean }>()

    // systemd hears what the daemon is doing when it changes, and the watchdog's ping once every account's loop
    // has turned since the last one: a wedged loop, whichever account's, stops the pings.
    let toldStatus: string | undefined
    const statusNow = () => Notify.statusLine(describeAll([...accounts.values()]))
    const onTick = (name: string) => {
      const hooks = options.hooks === undefined ? undefined : Hooks.watcher(options.hooks, {
        account: name,
        loginCommand: loginCommandOf(defaultTokenFile, name),
        env: process.env,
        now: () => clock.unsafeCurrentTimeMillis()
      })
      return (snapshot: Refresher.Snapshot) => {
        const self = accounts.get(name)
        if (self !== undefined) self.ticked = true
        const all = [...accounts.values()]
        const ping = notifier.watchdogInterval !== undefined && all.every((a) => a.ticked)
        if (ping) { for (const a of all) a.ticked = false }
        const status = statusNow()
        const lines = [...(ping ? ["WATCHDOG=1"] : []), ...(status === toldStatus ? [] : [status])]
        toldStatus = status
        return Effect.zipRight(
          lines.length === 0 ? Effect.void : notifier.send(...lines),
          hooks === undefined ? Effect.void : hooks(snapshot)
        )
      }
    }
    // every loop turns at least as often as the watchdog and the login-needed reminders ask
    const maxWait = [
      notifier.watchdogInterval,
      options.hooks?.onLoginNeeded === undefined ? undefined : options.hooks.loginNotifyInterval
    ].filter((d) => d !== undefined).reduce<Duration.Duration | undefined>(
      (least, d) => least === undefined || Duration.lessThan(d, least) ? d : least,
      undefined
    )

    const start = (name: string, atStart: boolean) =>
      Effect.gen(function*() {
        const tokenFile = Accounts.tokenFileOf(defaultTokenFile, name)
        // only before any refresher runs: later, a temporary may be a live refresher's reserved write
        if (atStart) yield* TokenFile.removeTemporaries(tokenFile)
        const refresher = yield* Refresher.make({
          tokenFile,
          margin: settings.margin,
          recheck: options.recheck,
          execute: options.executor === undefined ? undefined : yield* options.executor({ name, tokenFile }),
          onTick: onTick(name),
          maxWait,
          login: Accounts.loginCommand(name)
        })
        yield* refresher.load
        const fiber = yield* refresher.run.pipe(
          Effect.annotateLogs({ account: name }),
          Effect.forkIn(scope)
        )
        accounts.set(name, { name, refresher, fiber, ticked: false })
        return refresher
      }).pipe(Effect.annotateLogs({ account: name }))

    // The accounts on disk now: new ones start, gone ones stop (never `default`), and every loop re-reads its file.
    const lock = yield* Effect.makeSemaphore(1)
    let started = false
    const relist = lock.withPermits(1)(Effect.gen(function*() {
      const names = Accounts.list(defaultTokenFile)
      if (names === undefined) {
        return yield* Effect.logWarning("cannot read the accounts directory; keeping the accounts")
      }
      for (const name of names) {
        if (accounts.has(name)) continue
        yield* start(name, !started)
        yield* Effect.logInfo("account added").pipe(Effect.annotateLogs({ account: name }))
      }
      for (const [name, account] of accounts) {
        if (names.includes(name)) continue
        accounts.delete(name)
        // not awaited: a refresh in flight finishes its write first, and nothing else waits for it
        yield* Fiber.interruptFork(account.fiber)
        yield* Effect.logInfo("account removed (its token file and settings are gone)").pipe(
          Effect.annotateLogs({ account: name })
        )
      }
      for (const account of accounts.values()) yield* account.refresher.wake
    }))

    const first = yield* start(Accounts.defaultName, true)
    yield* relist
    started = true
    const changed = () => Runtime.runFork(runtime)(relist)

    const refreshOf = (refresher: Refresher.Refresher) => () =>
      Runtime.runPromise(runtime)(Effect.either(refresher.refreshNow)).then((result) =>
        result._tag === "Right"
          ? { ok: true as const, outcome: result.right.outcome }
          : { ok: false as const, error: result.left }
      )
    const metrics = () =>
      Metrics.render(
        [...accounts.values()].map((a) => ({
          name: a.name,
          snapshot: a.refresher.snapshot(),
          counters: a.refresher.counters
        })),
        clock.unsafeCurrentTimeMillis()
      )
    yield* SocketServer.serve(settings.socket, {
      metrics,
      // the default account's, on the hot path (`GET /token` without a parameter)
      snapshot: first.snapshot,
      refresh: refreshOf(first),
      account: (name) => {
        const found = accounts.get(name)
        return found === undefined
          ? undefined
          : { snapshot: found.refresher.snapshot, refresh: refreshOf(found.refresher) }
      },
      accounts: () => [...accounts.values()].map((a) => ({ name: a.name, snapshot: a.refresher.snapshot() })),
      now: () => clock.unsafeCurrentTimeMillis()
    }, { group: options.socketGroup })
    // Any change in the token file's directory or in `accounts/` (a login, another tool, a revoke) re-lists the
    // accounts and wakes every loop, which compares its file's stamp with the last one it read or wrote; the
    // watches outlive the directories' deletion and notice their creation.
    yield* DirectoryWatch.watch(Path.dirname(defaultTokenFile), changed)
    yield* DirectoryWatch.watch(Accounts.directoryOf(defaultTokenFile), changed)
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        const onHup = () =>
          Runtime.runFork(runtime)(Effect.gen(function*() {
            yield* notifier.send("RELOADING=1", Notify.monotonicLine(), Notify.statusLine("reloading (SIGHUP)"))
            for (const account of [...accounts.values()]) {
              if (options.reload === undefined) {
                yield* account.refresher.reconfigure(undefined)
                continue
              }
              const next = yield* Effect.either(options.reload(account.name))
              if (next._tag === "Right") {
                yield* account.refresher.reconfigure(next.right)
                yield* Effect.logInfo("SIGHUP: configuration reloaded").pipe(
                  Effect.annotateLogs({ account: account.name })
                )
              } else {
                yield* Effect.logError("SIGHUP: the new configuration is invalid; fix it (the next refresh reads it)")
                  .pipe(Effect.annotateLogs({ account: account.name, error: next.left.message }))
              }
            }
            yield* Effect.logInfo("SIGHUP: re-reading the token files")
            yield* relist
            toldStatus = statusNow()
            yield* notifier.send("READY=1", toldStatus)
          }))
        process.on("SIGHUP", onHup)
        return onHup
      }),
      (onHup) => Effect.sync(() => process.off("SIGHUP", onHup))
    )
    const listen = options.metricsListen
    if (listen !== undefined) {
      yield* Metrics.serveTcp(listen, metrics).pipe(
        Effect.mapError((error) =>
          new ConfigurationError({
            detail: `cannot serve metrics on ${listen.host}:${listen.port} (--metrics-listen): ${error.message}.`
          })
        )
      )
      yield* Effect.logInfo("serving /metrics over TCP").pipe(
        Effect.annotateLogs({ metrics_listen: `${listen.host}:${listen.port}` })
      )
    }
    yield* Effect.logInfo("started").pipe(Effect.annotateLogs({
      socket: settings.socket,
      token_file: defaultTokenFile,
      accounts: [...accounts.keys()].join(","),
      refresh_margin: Duration.format(settings.margin),
      pid: process.pid
    }))
    // No grant yet (no file, or Strava refused it): say what the daemon waits for, once, at start.
    for (const account of accounts.values()) {
      const snapshot = account.refresher.snapshot()
      if (snapshot.status !== "needs_login") continue
      yield* Effect.logWarning(
        `waiting for \`${
          Accounts.loginCommand(account.name)
        }\`: the socket answers 503 needs_login until a token file appears`
      ).pipe(Effect.annotateLogs({ account: account.name, reason: snapshot.lastError ?? "no token file" }))
    }
    // The socket serves: systemd may start what depends on the daemon.
    toldStatus = statusNow()
    yield* notifier.send("READY=1", toldStatus)
    return yield* Effect.never.pipe(
      Effect.onInterrupt(() =>
        Effect.zipRight(notifier.send("STOPPING=1", Notify.statusLine("stopping")), Effect.logInfo("stopping"))
      )
    )
  }).pipe(Effect.scoped)

const iso = (millis: number) => new Date(millis).toISOString()

/** What the daemon is doing for every account, in a line for systemd's `STATUS=` (no token, no secret). */
const describeAll = (accounts: ReadonlyArray<Account>): string => {
  if (accounts.length === 1) return describe(accounts[0]!.refresher.snapshot())
  const count = new Map<string, number>()
  for (const a of accounts) {
    const status = a.refresher.snapshot().status
    count.set(status, (count.get(status) ?? 0) + 1)
  }
  const words: Record<Refresher.Status, string> = {
    ok: "serving",
    refreshing: "refreshing",
    retrying: "retrying",
    needs_login: "waiting for a login"
  }
  return `${accounts.length} accounts: ` +
    (["ok", "refreshing", "retrying", "needs_login"] as const).filter((s) => count.has(s))
      .map((s) => `${count.get(s)} ${words[s]}`).join(", ")
}

/** What the daemon is doing, in a line for systemd's `STATUS=` (no token, no secret). */
const describe = (snapshot: Refresher.Snapshot): string => {
  switch (snapshot.status) {
    case "needs_login":
      return "waiting for `strava-auth login` (no valid grant)"
    case "refreshing":
      return "refreshing the token"
    case "retrying":
      return `retrying after ${snapshot.consecutiveFailures} failure(s): ${snapshot.lastError ?? "unknown"}`
    case "ok":
      return snapshot.tokens === undefined
        ? "serving"
        : `serving the token (expires ${iso(snapshot.tokens.expiresAt * 1000)}` +
          (snapshot.nextRefreshAt === undefined ? ")" : `; next refresh ${iso(snapshot.nextRefreshAt)})`)
  }
}
