/**
 * The refresh helper: the daemon refreshes by running `strava-auth refresh --local --report` as a detached
 * child process, which runs the engine's `refreshOnce` (lock, re-read, refresh, write) and reports one JSON
 * line (`Report`, a Schema both ends share).
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
 * @internal
 */
import { spawn } from "node:child_process"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

import { GrantStore, RefreshEngine, StravaError, Token } from "@strava-auth/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"

const WindowWire = Schema.Struct({ fifteen_minutes: Schema.Number, daily: Schema.Number })
const windowFromWire = (w: typeof WindowWire.Type | undefined) =>
  w === undefined ? Option.none() : Option.some({ fifteenMinutes: w.fifteen_minutes, daily: w.daily })
const windowToWire = (w: Option.Option<{ readonly fifteenMinutes: number; readonly daily: number }>) =>
  Option.match(w, { onNone: () => undefined, onSome: (v) => ({ fifteen_minutes: v.fifteenMinutes, daily: v.daily }) })

/**
 * A 429 on the wire: its window's reset, and the limits and usage Strava's headers reported (for `/metrics`).
 */
const RateLimitedReport = Schema.transform(
  Schema.Struct({
    _tag: Schema.Literal("RateLimited"),
    status: Schema.Number,
    retryAt: Schema.Number,
    limit: Schema.optional(WindowWire),
    usage: Schema.optional(WindowWire),
    read_limit: Schema.optional(WindowWire),
    read_usage: Schema.optional(WindowWire)
  }),
  Schema.instanceOf(StravaError.RateLimited),
  {
    strict: true,
    decode: (wire) =>
      new StravaError.RateLimited({
        status: wire.status,
        retryAt: wire.retryAt,
        limit: windowFromWire(wire.limit),
        usage: windowFromWire(wire.usage),
        readLimit: windowFromWire(wire.read_limit),
        readUsage: windowFromWire(wire.read_usage)
      }),
    encode: (error) => {
      const windows = {
        limit: windowToWire(error.limit),
        usage: windowToWire(error.usage),
        read_limit: windowToWire(error.readLimit),
        read_usage: windowToWire(error.readUsage)
      }
      return {
        _tag: "RateLimited" as const,
        status: error.status,
        retryAt: error.retryAt,
        ...Object.fromEntries(Object.entries(windows).filter(([, w]) => w !== undefined))
      }
    }
  }
)

/**
 * Every error a refresh can end with, as the helper reports it (the daemon gets back the same typed error).
 *
 * @since 0.2.0
 * @category schemas
 */
export const ReportedError = Schema.Union(
  StravaError.InvalidGrant,
  StravaError.InvalidClient,
  StravaError.AppInactive,
  StravaError.MissingScope,
  StravaError.Unauthorized,
  RateLimitedReport,
  StravaError.ServerError,
  StravaError.TransportError,
  StravaError.UnexpectedResponse,
  GrantStore.GrantStoreError,
  RefreshEngine.LoginRequired,
  RefreshEngine.RefreshAborted
)

/**
 * The report's format version.
 *
 * @since 0.2.0
 * @category constants
 */
export const reportVersion = 1

/**
 * What the helper prints on stdout: one JSON line.
 * - `ok: true`: `outcome` says whether Strava was asked (`refreshed`) or another process had already
 *   refreshed (`current`); the tokens are in the file.
 * - `ok: false`: the error; `unsaved` is the set Strava answered when the file could not be written.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Report = Schema.Union(
  Schema.Struct({
    version: Schema.Literal(reportVersion),
    ok: Schema.Literal(true),
    outcome: Schema.Literal("refreshed", "current")
  }),
  Schema.Struct({
    version: Schema.Literal(reportVersion),
    ok: Schema.Literal(false),
    error: ReportedError,
    /** Strava answered, the file could not be written: the new set, and the set it replaces. */
    unsaved: Schema.optional(Schema.Struct({ tokens: Token.TokenSet, replaces: Token.TokenSet }))
  })
)

/**
 * @since 0.1.0
 * @category models
 */
export type Report = typeof Report.Type

const encodeReport = Schema.encodeSync(Schema.parseJson(Report))
const decodeReport = Schema.decodeUnknownOption(Schema.parseJson(Report))

/**
 * The report line for an outcome or a failure (the `--report` side).
 *
 * @since 0.2.0
 * @category encoding
 */
export const reportLine = (
  result: Either.Either<RefreshEngine.Outcome, RefreshEngine.RefreshError>
): string => {
  if (result._tag === "Right") {
    return encodeReport({
      version: reportVersion,
      ok: true,
      outcome: result.right._tag === "Refreshed" ? "refreshed" : "current"
    })
  }
  const error = result.left
  return encodeReport(
    error._tag === "GrantUnsaved"
      ? {
        version: reportVersion,
        ok: false,
        error: error.error,
        unsaved: { tokens: error.tokens, replaces: error.previous }
      }
      : { version: reportVersion, ok: false, error }
  )
}

/**
 * The environment variable that carries the daemon's `RefreshEngine.fingerprint` of the set it holds to the
 * helper (internal to the two).
 *
 * @since 0.2.0
 * @category constants
 */
export const seenVariable = "STRAVA_AUTH_HELPER_SEEN"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly tokenFile: string
  /** Flags to pass on (the account): never a secret. */
  readonly flags: ReadonlyArray<string>
  /** Variables to set for it over the daemon's own (the daemon's `--client-id`, below an account's own app). */
  readonly env?: Readonly<Record<string, string>> | undefined
  /** `node /path/to/strava-auth.js` by default. */
  readonly command?: ReadonlyArray<string> | undefined
}

const defaultCommand = (): ReadonlyArray<string> => [
  process.execPath,
  Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..", "bin", "strava-auth.js")
]

/**
 * Runs one refresh in a helper process and returns its report (a helper that dies without one is a
 * `RefreshAborted`).
 *
 * @since 0.1.0
 * @category running
 */
export const run = (
  options: Options,
  args: ReadonlyArray<string>,
  seen?: string
): Effect.Effect<Report, RefreshEngine.RefreshAborted> =>
  Effect.async<Report, RefreshEngine.RefreshAborted>((resume) => {
    const [command, ...prefix] = options.command ?? defaultCommand()
    const child = spawn(
      command!,
      [...prefix, "refresh", "--local", "--report", ...args, "--token-file", options.tokenFile, ...options.flags],
      {
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
        // The set the daemon holds, as a digest (never the tokens): the helper refreshes only if the file still
        // holds it, else another process has refreshed and its set is used.
        env: { ...process.env, ...options.env, ...(seen === undefined ? {} : { [seenVariable]: seen }) }
      }
    )
    let stdout = ""
    let stderr = ""
    child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d))
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d))
    child.once("error", (error) =>
      resume(Effect.fail(
        new RefreshEngine.RefreshAborted({ detail: `cannot start the refresh helper: ${error.message}` })
      )))
    child.once("close", (code) => {
      const report = decodeReport(stdout.trim().split("\n").at(-1) ?? "")
      if (Option.isSome(report)) return resume(Effect.succeed(report.value))
      const last = stderr.trim().split("\n").at(-1)
      resume(Effect.fail(
        new RefreshEngine.RefreshAborted({
          detail: `the refresh helper exited with ${code} without a report${
            last === undefined || last === "" ? "" : `: ${last}`
          }`
        })
      ))
    })
  })

/**
 * The engine's executor that runs each refresh in a helper process; the outcome is read back from the store.
 *
 * @since 0.2.0
 * @category constructors
 */
export const executor = (
  options: Options
): Effect.Effect<RefreshEngine.Executor, never, GrantStore.GrantStore> =>
  Effect.map(GrantStore.GrantStore, (store) => (key, request) =>
    Effect.gen(function*() {
      const millis = Duration.toMillis(request.margin ?? RefreshEngine.defaultMargin)
      const margin = `${Math.max(1, Math.ceil(millis / 1000))}s`
      const seen = request.seen === undefined ? undefined : yield* RefreshEngine.fingerprint(request.seen)
      const report = yield* run(
        options,
        // A forced refresh happens whatever is left: the margin decides only with --if-due.
        request.force ? [] : ["--if-due", "--refresh-margin", margin],
        seen
      )
      if (!report.ok) {
        if (report.unsaved !== undefined && report.error._tag === "GrantStoreError") {
          return yield* new RefreshEngine.GrantUnsaved({
            key,
            tokens: report.unsaved.tokens,
            previous: report.unsaved.replaces,
            error: report.error
          })
        }
        return yield* report.error
      }
      const stored = yield* store.get(key)
      if (Option.isNone(stored)) {
        return yield* new RefreshEngine.LoginRequired({ reason: "The token file is gone after the refresh." })
      }
      return report.outcome === "refreshed" && request.seen !== undefined
        ? RefreshEngine.Outcome.Refreshed({ tokens: stored.value, previous: request.seen })
        : RefreshEngine.Outcome.Current({ tokens: stored.value })
    }))
