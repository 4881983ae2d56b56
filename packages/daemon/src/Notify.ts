/**
 * systemd's notify protocol (`Type=notify`): `READY=1` once the socket serves, `STATUS=` lines that say what the
 * daemon is doing, `RELOADING=1`/`READY=1` around SIGHUP, `STOPPING=1`, and `WATCHDOG=1` from the refresher's
 * own loop at half of `WATCHDOG_USEC`, so a wedged refresher stops the pings and systemd restarts it.
 *
 * Node has no Unix datagram sockets, so the messages go through `systemd-notify` (with `--pid` naming this
 * process as the main PID); the units set `NotifyAccess=all`, since the sender is a child. Without
 * `NOTIFY_SOCKET` nothing is sent and nothing is spawned. Messages are sent one at a time, in order; a failure
 * to send is logged once and never stops the daemon.
 *
 * @internal The command's own, not part of `@strava-auth/daemon`'s entry.
 * @since 0.2.0
 */
import { spawn } from "node:child_process"

import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"

/**
 * @since 0.2.0
 * @category models
 */
export interface Notifier {
  /** Sends the `NAME=value` lines as one message (no-op without `NOTIFY_SOCKET`). */
  readonly send: (...lines: ReadonlyArray<string>) => Effect.Effect<void>
  /** How often the loop must ping (`WATCHDOG=1`): half of `WATCHDOG_USEC`, when systemd asks for pings. */
  readonly watchdogInterval: Duration.Duration | undefined
}

/**
 * The notifier that sends nothing.
 *
 * @since 0.2.0
 * @category constructors
 */
export const none: Notifier = { send: () => Effect.void, watchdogInterval: undefined }

/** A text for `STATUS=`: one line, no control characters, not too long. */
export const statusLine = (text: string): string =>
  `STATUS=${text.replace(/[\u0000-\u001f\u007f]/g, " ").slice(0, 200)}`

/**
 * A notifier for this process's environment.
 *
 * @since 0.2.0
 * @category constructors
 */
export const fromEnvironment = (env: Readonly<Record<string, string | undefined>> = process.env): Notifier => {
  const socket = env["NOTIFY_SOCKET"]
  if (socket === undefined || socket === "") return none
  const usec = Number(env["WATCHDOG_USEC"])
  const forUs = env["WATCHDOG_PID"] === undefined || env["WATCHDOG_PID"] === String(process.pid)
  const watchdogInterval = Number.isFinite(usec) && usec > 0 && forUs
    ? Duration.millis(Math.max(1, Math.floor(usec / 2000)))
    : undefined
  let chain: Promise<void> = Promise.resolve()
  let warned = false
  const deliver = (lines: ReadonlyArray<string>) =>
    new Promise<void>((resolve) => {
      const child = spawn("systemd-notify", [`--pid=${process.pid}`, ...lines], { stdio: "ignore" })
      const done = (problem: string | undefined) => {
        if (problem !== undefined && !warned) {
          warned = true
          process.stderr.write(
            `strava-auth: cannot notify systemd (${problem}); NOTIFY_SOCKET is set, so the unit expects it.\n`
          )
        }
        resolve()
      }
      child.once("error", (error) => done(error.message))
      child.once("exit", (code) => done(code === 0 ? undefined : `systemd-notify exited with ${code}`))
    })
  return {
    watchdogInterval,
    send: (...lines) =>
      Effect.promise(() => {
        chain = chain.then(() => deliver(lines))
        return chain
      })
  }
}

/**
 * `MONOTONIC_USEC=`, which systemd wants with `RELOADING=1`: CLOCK_MONOTONIC in microseconds.
 *
 * @since 0.2.0
 */
export const monotonicLine = (): string => `MONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`
