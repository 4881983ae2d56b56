/**
 * The refresh helper: the daemon refreshes by running `strava-auth refresh --local --report` as a detached
 * child process, which takes the token file's lock, refreshes, writes the file and reports one JSON line.
 *
 * Why a separate process: Strava invalidates the old refresh token the moment it answers with a new one. A
 * daemon killed between that answer and its write would lose the grant. The helper is detached (its own
 * session), so killing the daemon, even with SIGKILL, does not kill it: it finishes, the file holds the live
 * refresh token, and the next daemon adopts it. (Under systemd, stopping the service signals the whole cgroup;
 * the helper then finishes its refresh and write before exiting, as every strava-auth command does.)
 *
 * Secrets never go on its argv: it reads the client secret from the environment it inherits, like the daemon.
 * The report carries tokens only in one case, over the pipe between the two processes: Strava answered but
 * the file could not be written, and the daemon must keep the new set to write it later.
 *
 * @since 0.1.0
 */
import { spawn } from "node:child_process"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"

import { RefreshFailed } from "./DaemonError.js"

/**
 * What the helper prints on stdout: one JSON line.
 *
 * @since 0.1.0
 * @category models
 */
export type Report =
  | { readonly ok: true }
  | {
    readonly ok: false
    readonly error: {
      readonly tag: string
      readonly message: string
      readonly retryable: boolean
      readonly retryAt?: number | undefined
    }
    /** The token file's text when Strava answered but the helper could not write it. */
    readonly unsaved?: string | undefined
  }

/**
 * The report for a failure (the `--report` side).
 *
 * @since 0.1.0
 * @category encoding
 */
export const reportOf = (error: unknown, retryable: boolean, unsaved?: string): Report => {
  const e = error as { readonly _tag?: string; readonly message?: string; readonly retryAt?: unknown }
  return {
    ok: false,
    error: {
      tag: e._tag ?? "Unknown",
      message: e.message ?? String(error),
      retryable,
      ...(typeof e.retryAt === "number" ? { retryAt: e.retryAt } : {})
    },
    ...(unsaved === undefined ? {} : { unsaved })
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly tokenFile: string
  /** Flags to pass on (client id, URLs): never a secret. */
  readonly flags: ReadonlyArray<string>
  /** `node /path/to/strava-auth.js` by default. */
  readonly command?: ReadonlyArray<string> | undefined
}

const defaultCommand = (): ReadonlyArray<string> => [
  process.execPath,
  Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..", "bin", "strava-auth.js")
]

/**
 * Runs one refresh in the helper; fails with `RefreshFailed` carrying the helper's report.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (options: Options): Effect.Effect<void, RefreshFailed> =>
  Effect.async<void, RefreshFailed>((resume) => {
    const [command, ...prefix] = options.command ?? defaultCommand()
    const child = spawn(
      command!,
      [...prefix, "refresh", "--local", "--report", "--token-file", options.tokenFile, ...options.flags],
      { detached: true, stdio: ["ignore", "pipe", "pipe"], env: process.env }
    )
    let stdout = ""
    let stderr = ""
    child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d))
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d))
    child.once("error", (error) =>
      resume(Effect.fail(
        new RefreshFailed({
          cause: "Helper",
          detail: `cannot start the refresh helper: ${error.message}`,
          retryable: true
        })
      )))
    child.once("close", (code) => {
      let report: Report | undefined
      try {
        report = JSON.parse(stdout.trim().split("\n").at(-1) ?? "") as Report
      } catch {
        report = undefined
      }
      if (report?.ok === true) return resume(Effect.void)
      if (report?.ok === false) {
        return resume(Effect.fail(
          new RefreshFailed({
            cause: report.error.tag,
            detail: report.error.message,
            retryable: report.error.retryable,
            ...(report.error.retryAt === undefined ? {} : { retryAt: report.error.retryAt }),
            ...(report.unsaved === undefined ? {} : { unsaved: Redacted.make(report.unsaved) })
          })
        ))
      }
      resume(Effect.fail(
        new RefreshFailed({
          cause: "Helper",
          detail: `the refresh helper exited with ${code} without a report${
            stderr.trim() === "" ? "" : `: ${stderr.trim().split("\n").at(-1)}`
          }`,
          retryable: true
        })
      ))
    })
  })
