/**
 * Commands the daemon runs when something happens, as pizauth does: after each new access token is stored
 * (`STRAVA_AUTH_ON_TOKEN`), when an account needs a login and again every `STRAVA_AUTH_LOGIN_NOTIFY_INTERVAL`
 * until it has one (`STRAVA_AUTH_ON_LOGIN_NEEDED`), and on a refresh failure (`STRAVA_AUTH_ON_ERROR`).
 *
 * Each is a command line run through `/bin/sh -c`, with the daemon's environment minus its secrets, plus
 * `STRAVA_AUTH_ACCOUNT`, `STRAVA_AUTH_EXPIRES_AT` (epoch seconds, when there is a token), and
 * `STRAVA_AUTH_LOGIN_COMMAND` (login needed) or `STRAVA_AUTH_ERROR` (a failure, secret-free). A token is never
 * in a hook's argv or environment: `ON_TOKEN` reads it on its stdin. A hook never blocks refreshing or
 * serving (it runs beside them), is killed after a minute, and its exit is logged.
 *
 * @internal The command's own, not part of `@strava-auth/daemon`'s entry.
 * @since 0.2.0
 */
import { spawn } from "node:child_process"

import type { Token } from "@strava-auth/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"

import type * as Refresher from "./Refresher.js"

/**
 * @since 0.2.0
 * @category models
 */
export interface Options {
  readonly onToken: string | undefined
  readonly onLoginNeeded: string | undefined
  readonly onError: string | undefined
  readonly loginNotifyInterval: Duration.Duration
  /** How long a hook may run before it is killed. */
  readonly timeout?: Duration.Duration | undefined
}

/** Variables a hook never sees: the client secret and the daemon's own plumbing. */
const withheld = new Set([
  "STRAVA_CLIENT_SECRET",
  "STRAVA_AUTH_HELPER_SEEN",
  "NOTIFY_SOCKET",
  "WATCHDOG_USEC",
  "WATCHDOG_PID",
  "STRAVA_AUTH_ON_TOKEN",
  "STRAVA_AUTH_ON_LOGIN_NEEDED",
  "STRAVA_AUTH_ON_ERROR"
])

/**
 * The environment a hook runs with.
 *
 * @since 0.2.0
 * @category running
 */
export const environment = (
  base: Readonly<Record<string, string | undefined>>,
  extra: Readonly<Record<string, string>>
): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [name, value] of Object.entries(base)) {
    if (value !== undefined && !withheld.has(name)) env[name] = value
  }
  return { ...env, ...extra }
}

/**
 * Runs one hook beside the daemon: returns at once; logs how it ended.
 *
 * @since 0.2.0
 * @category running
 */
export const run = (
  hook: "on_token" | "on_login_needed" | "on_error",
  command: string,
  env: Record<string, string>,
  options: { readonly stdin?: string | undefined; readonly timeout?: Duration.Duration | undefined } = {}
): Effect.Effect<void> =>
  Effect.forkDaemon(
    Effect.async<{ readonly code: number | null; readonly signal: NodeJS.Signals | null; readonly error?: string }>(
      (resume) => {
        // Its own process group, so that the timeout kills all of it (a pipeline, `a; b`), not only the shell.
        const child = spawn("/bin/sh", ["-c", command], {
          env,
          detached: true,
          stdio: [options.stdin === undefined ? "ignore" : "pipe", "ignore", "ignore"]
        })
        const killGroup = () => {
          try {
            process.kill(-child.pid!, "SIGKILL")
          } catch {
            child.kill("SIGKILL")
          }
        }
        const timer = setTimeout(killGroup, Duration.toMillis(options.timeout ?? Duration.minutes(1)))
        timer.unref()
        child.once("error", (error) => {
          clearTimeout(timer)
          resume(Effect.succeed({ code: null, signal: null, error: error.message }))
        })
        child.once("exit", (code, signal) => {
          clearTimeout(timer)
          resume(Effect.succeed({ code, signal }))
        })
        if (options.stdin !== undefined) {
          child.stdin!.on("error", () => {}) // a hook that does not read its stdin
          child.stdin!.end(options.stdin)
        }
      }
    ).pipe(
      Effect.flatMap((ended) =>
        ended.code === 0
          ? Effect.logInfo("hook finished").pipe(Effect.annotateLogs({ hook, exit_code: 0 }))
          : Effect.logWarning("hook failed").pipe(Effect.annotateLogs({
            hook,
            ...(ended.code === null ? {} : { exit_code: ended.code }),
            ...(ended.signal === null ? {} : { signal: ended.signal }),
            ...(ended.error === undefined ? {} : { error: ended.error })
          }))
      )
    )
  ).pipe(Effect.asVoid)

/**
 * What the hooks watch: called with every snapshot the refresh loop sees; runs the hooks its changes call for.
 *
 * @since 0.2.0
 * @category running
 */
export const watcher = (
  options: Options,
  context: {
    readonly account: string
    readonly loginCommand: string
    readonly env: Readonly<Record<string, string | undefined>>
    readonly now: () => number
  }
) => {
  let lastToken: string | undefined
  let lastFailures = 0
  let loginNotifiedAt: number | undefined
  const base = (tokens: Token.TokenSet | undefined) => ({
    STRAVA_AUTH_ACCOUNT: context.account,
    ...(tokens === undefined ? {} : { STRAVA_AUTH_EXPIRES_AT: String(tokens.expiresAt) })
  })
  return (snapshot: Refresher.Snapshot): Effect.Effect<void> =>
    Effect.gen(function*() {
      const tokens = snapshot.tokens
      const token = tokens === undefined ? undefined : Redacted.value(tokens.accessToken)
      if (token !== undefined && token !== lastToken && snapshot.status !== "needs_login") {
        lastToken = token
        if (options.onToken !== undefined) {
          yield* run("on_token", options.onToken, environment(context.env, base(tokens)), {
            stdin: `${token}\n`,
            timeout: options.timeout
          })
        }
      }
      if (snapshot.status === "needs_login") {
        const now = context.now()
        if (
          loginNotifiedAt === undefined ||
          now - loginNotifiedAt >= Duration.toMillis(options.loginNotifyInterval)
        ) {
          loginNotifiedAt = now
          if (options.onLoginNeeded !== undefined) {
            yield* run(
              "on_login_needed",
              options.onLoginNeeded,
              environment(context.env, { ...base(tokens), STRAVA_AUTH_LOGIN_COMMAND: context.loginCommand }),
              { timeout: options.timeout }
            )
          }
        }
      } else loginNotifiedAt = undefined
      if (snapshot.consecutiveFailures > lastFailures && options.onError !== undefined) {
        yield* run(
          "on_error",
          options.onError,
          environment(context.env, { ...base(tokens), STRAVA_AUTH_ERROR: snapshot.lastError ?? "unknown" }),
          { timeout: options.timeout }
        )
      }
      lastFailures = snapshot.consecutiveFailures
    })
}
