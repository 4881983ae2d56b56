/**
 * `strava-auth daemon`: the refresher and the socket server, wired together.
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
import * as Runtime from "effect/Runtime"

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
 * Runs until interrupted.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (
  settings: Local,
  options: {
    readonly recheck?: Duration.Duration
    /** Builds the Strava client anew from the configuration, for SIGHUP. */
    readonly reload?: Effect.Effect<StravaOAuth.StravaOAuthShape, ConfigurationError>
    /** Where refreshes run: a helper process (`Helper.executor`); in this process when absent. */
    readonly execute?: RefreshEngine.Executor
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
    yield* TokenFile.ensureDirectory(Path.dirname(settings.tokenFile))
    yield* TokenFile.removeTemporaries(settings.tokenFile)
    const notifier = options.notifier ?? Notify.fromEnvironment()
    // systemd hears what the daemon is doing when it changes, and the watchdog's ping on every turn of the loop.
    let toldStatus: string | undefined
    const clock = yield* Effect.clock
    const hooks = options.hooks === undefined ? undefined : Hooks.watcher(options.hooks, {
      account: "default",
      loginCommand: `strava-auth login --token-file '${settings.tokenFile.replace(/'/g, "'\\''")}'`,
      env: process.env,
      now: () => clock.unsafeCurrentTimeMillis()
    })
    const onTick = (snapshot: Refresher.Snapshot) => {
      const status = Notify.statusLine(describe(snapshot))
      const lines = [
        ...(notifier.watchdogInterval === undefined ? [] : ["WATCHDOG=1"]),
        ...(status === toldStatus ? [] : [status])
      ]
      toldStatus = status
      return Effect.zipRight(
        lines.length === 0 ? Effect.void : notifier.send(...lines),
        hooks === undefined ? Effect.void : hooks(snapshot)
      )
    }
    const refresher = yield* Refresher.make({
      tokenFile: settings.tokenFile,
      margin: settings.margin,
      recheck: options.recheck,
      execute: options.execute,
      onTick,
      // the loop turns at least as often as the watchdog and the login-needed reminders ask
      maxWait: [
        notifier.watchdogInterval,
        options.hooks?.onLoginNeeded === undefined ? undefined : options.hooks.loginNotifyInterval
      ].filter((d) => d !== undefined).reduce<Duration.Duration | undefined>(
        (least, d) => least === undefined || Duration.lessThan(d, least) ? d : least,
        undefined
      )
    })
    yield* refresher.load
    const runtime = yield* Effect.runtime<StravaOAuth.StravaOAuth | FileSystem.FileSystem>()
    const wake = () => Runtime.runFork(runtime)(refresher.wake)
    const metrics = () =>
      Metrics.render(
        [{ name: "default", snapshot: refresher.snapshot(), counters: refresher.counters }],
        clock.unsafeCurrentTimeMillis()
      )
    yield* SocketServer.serve(settings.socket, {
      metrics,
      snapshot: refresher.snapshot,
      now: () => clock.unsafeCurrentTimeMillis(),
      refresh: () =>
        Runtime.runPromise(runtime)(Effect.either(refresher.refreshNow)).then((result) =>
          result._tag === "Right"
            ? { ok: true as const, outcome: result.right.outcome }
            : { ok: false as const, error: result.left }
        )
    }, { group: options.socketGroup })
    // Any change in the token file's directory (a login, another tool, a revoke) wakes the loop, which
    // compares the file's stamp with the last one it read or wrote; the watch outlives the directory's deletion.
    yield* DirectoryWatch.watch(Path.dirname(settings.tokenFile), wake)
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        const onHup = () =>
          Runtime.runFork(runtime)(Effect.gen(function*() {
            yield* notifier.send("RELOADING=1", Notify.monotonicLine(), Notify.statusLine("reloading (SIGHUP)"))
            if (options.reload !== undefined) {
              const next = yield* Effect.either(options.reload)
              if (next._tag === "Right") {
                yield* refresher.reconfigure(next.right)
                yield* Effect.logInfo("SIGHUP: configuration reloaded")
              } else {
                yield* Effect.logError("SIGHUP: the new configuration is invalid; fix it (the next refresh reads it)")
                  .pipe(
                    Effect.annotateLogs({ error: next.left.message })
                  )
              }
            }
            yield* Effect.logInfo("SIGHUP: re-reading the token file")
            yield* refresher.wake
            toldStatus = Notify.statusLine(describe(refresher.snapshot()))
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
      token_file: settings.tokenFile,
      refresh_margin: Duration.format(settings.margin),
      pid: process.pid
    }))
    // No grant yet (no file, or Strava refused it): say what the daemon waits for, once, at start.
    const first = refresher.snapshot()
    if (first.status === "needs_login") {
      yield* Effect.logWarning(
        "waiting for `strava-auth login`: the socket answers 503 needs_login until a token file appears"
      ).pipe(Effect.annotateLogs({ reason: first.lastError ?? "no token file" }))
    }
    // The socket serves: systemd may start what depends on the daemon.
    toldStatus = Notify.statusLine(describe(refresher.snapshot()))
    yield* notifier.send("READY=1", toldStatus)
    return yield* refresher.run.pipe(
      Effect.onInterrupt(() =>
        Effect.zipRight(notifier.send("STOPPING=1", Notify.statusLine("stopping")), Effect.logInfo("stopping"))
      )
    )
  }).pipe(Effect.scoped)

const iso = (millis: number) => new Date(millis).toISOString()

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
