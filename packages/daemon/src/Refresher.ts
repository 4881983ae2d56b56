/**
 * The refresher: keeps the token file current and publishes the token the socket serves.
 *
 * States, named for what they are: `ok` (a valid token, the next refresh scheduled), `refreshing` (a
 * request to Strava is in flight), `retrying` (the last attempt failed transiently; the current token is
 * served while it is valid), `needs_login` (no token, the grant is gone, or the app is refused).
 *
 * Invariants (each one a pitfall pizauth or Vault Agent users hit):
 * - Time is wall-clock `expires_at`, re-checked at least every 30 seconds, so a laptop waking from suspend
 *   or a clock jump refreshes at once instead of trusting a monotonic timer that stopped.
 * - One refresh in flight, across the process (a shared in-flight result) and across processes (the token
 *   file's lock), and the file is re-read under the lock first, so a refresh by `strava-auth token` or a
 *   login is adopted instead of raced.
 * - The request and the write of its answer are uninterruptible: a SIGTERM waits for the new refresh token
 *   to be on disk. The new access token is published only after the write; if the write fails, the fresh
 *   set is kept in memory and written again on the next tick, never dropped.
 * - "The same token came back" (Strava's one-hour rule) is a success; the next attempt is then scheduled
 *   for the hour, so a margin over an hour never loops.
 * - Transient failures back off exponentially with jitter (1 s doubling, capped at 5 minutes, or until a
 *   429's window resets); permanent ones go to `needs_login` and the loop waits for a new token file.
 *
 * @since 0.1.0
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type { StravaError, Token } from "@strava-auth/core"
import { StravaOAuth, TokenSource } from "@strava-auth/core"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Random from "effect/Random"
import * as Redacted from "effect/Redacted"

import type { RefreshFailed, TokenFileError } from "./DaemonError.js"
import * as TokenFile from "./TokenFile.js"

/**
 * @since 0.1.0
 * @category models
 */
export type Status = "ok" | "refreshing" | "retrying" | "needs_login"

/**
 * What the socket serves and `status` reports. Replaced as a whole on every change, so a reader always sees
 * one consistent state.
 *
 * @since 0.1.0
 * @category models
 */
export interface Snapshot {
  readonly status: Status
  readonly tokens: Token.TokenSet | undefined
  /** Epoch milliseconds. */
  readonly nextRefreshAt: number | undefined
  readonly lastRefreshAt: number | undefined
  readonly consecutiveFailures: number
  /** A secret-free message, with what to do. */
  readonly lastError: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export type RefreshError = StravaError.StravaError | TokenFileError | TokenSource.LoginRequired | RefreshFailed

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly tokenFile: string
  /** Refresh when this little is left. */
  readonly margin: Duration.Duration
  /** The longest sleep between checks; 30 seconds. */
  readonly recheck?: Duration.Duration | undefined
  /**
   * Refresh in another process that takes the file's lock, refreshes, writes the file and reports
   * (`Helper.run`), instead of in this one. A refresh then survives the daemon being killed: the helper
   * finishes and writes the rotated refresh token whatever happens to the daemon.
   */
  readonly helper?: Effect.Effect<void, RefreshError> | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Refresher {
  readonly snapshot: () => Snapshot
  /** Refresh now, whatever the schedule (single flight: joins a refresh already in flight). */
  readonly refreshNow: Effect.Effect<Token.TokenSet, RefreshError>
  /** Reads the token file now (at start, before the socket opens, so the first request finds the token). */
  readonly load: Effect.Effect<void>
  /** Something changed on disk (the watcher) or SIGHUP: re-read the file at once. */
  readonly wake: Effect.Effect<void>
  /** Uses another client from now on (SIGHUP re-read the configuration). */
  readonly replaceOAuth: (oauth: StravaOAuth.StravaOAuthShape) => Effect.Effect<void>
  /** The loop; runs until interrupted. */
  readonly run: Effect.Effect<never>
}

const RECHECK = Duration.seconds(30)
const MAX_BACKOFF = Duration.toMillis(Duration.minutes(5))
const HOUR = Duration.toMillis(TokenSource.oneHourRule)

const initial: Snapshot = {
  status: "needs_login",
  tokens: undefined,
  nextRefreshAt: undefined,
  lastRefreshAt: undefined,
  consecutiveFailures: 0,
  lastError: "No token yet. Run `strava-auth login`."
}

/**
 * Builds the refresher; `run` starts its loop.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options
): Effect.Effect<Refresher, never, StravaOAuth.StravaOAuth | FileSystem.FileSystem> =>
  Effect.gen(function*() {
    let oauth = yield* StravaOAuth.StravaOAuth
    const context = yield* Effect.context<FileSystem.FileSystem>()
    const wakeups = yield* Queue.sliding<void>(1)
    const marginMillis = Duration.toMillis(options.margin)
    const path = options.tokenFile

    let state: Snapshot = initial
    let known: Option.Option<TokenFile.Stamp> = Option.none()
    let unsaved: Token.TokenSet | undefined
    let inflight: Deferred.Deferred<Token.TokenSet, RefreshError> | undefined

    const publish = (next: Partial<Snapshot>) => {
      state = { ...state, ...next }
    }

    /** When to refresh: the margin before expiry, less up to 30 s of jitter (at most a tenth of the margin). */
    const schedule = (tokens: Token.TokenSet, sameAsBefore: boolean) =>
      Effect.map(Random.next, (r) => {
        const jitter = r * Math.min(30_000, marginMillis / 10)
        const due = tokens.expiresAt * 1000 - marginMillis - jitter
        // After "the same token came back", Strava will not mint before the hour.
        return sameAsBefore ? Math.max(due, tokens.expiresAt * 1000 - HOUR) : due
      })

    const adopt = (tokens: Token.TokenSet, stamp: Option.Option<TokenFile.Stamp>, announce = true) =>
      Effect.gen(function*() {
        known = stamp
        const now = yield* Clock.currentTimeMillis
        const changed = state.tokens === undefined || !state.tokens.sameRefreshToken(tokens)
        publish({
          status: "ok",
          tokens,
          nextRefreshAt: yield* schedule(tokens, false),
          ...(changed ? { consecutiveFailures: 0, lastError: undefined } : {})
        })
        if (announce) {
          yield* Effect.logInfo("token loaded").pipe(
            Effect.annotateLogs({
              expires_at: new Date(tokens.expiresAt * 1000).toISOString(),
              next_refresh_at: new Date(state.nextRefreshAt!).toISOString(),
              expired: tokens.isExpired(now)
            })
          )
        }
      })

    /** Re-reads the file when its stamp differs from the last one we read or wrote. */
    const readIfChanged = (announce: boolean) =>
      Effect.gen(function*() {
        const stamp = yield* TokenFile.stamp(path)
        if (Option.getEquivalence(TokenFile.sameStamp)(stamp, known)) return
        if (Option.isNone(stamp)) {
          known = stamp
          if (state.status !== "needs_login" || state.tokens !== undefined) {
            publish({ ...initial, lastError: `The token file ${path} is gone. Run \`strava-auth login\`.` })
            yield* Effect.logWarning("needs login").pipe(Effect.annotateLogs({ reason: "token file removed" }))
          }
          return
        }
        const read = yield* Effect.either(TokenFile.readStamped(path))
        if (read._tag === "Left") {
          known = stamp
          publish({ lastError: read.left.message })
          yield* Effect.logError("cannot use the token file").pipe(Effect.annotateLogs({ error: read.left.message }))
          return
        }
        if (Option.isSome(read.right)) {
          const { stamp: fresh, tokens } = read.right.value
          const same = state.tokens !== undefined && state.tokens.sameRefreshToken(tokens) &&
            state.tokens.sameAccessToken(tokens)
          if (same) known = Option.some(fresh)
          else yield* adopt(tokens, Option.some(fresh), announce)
        }
      }).pipe(Effect.provide(context))
    const checkFile = readIfChanged(true)

    const persist = (fresh: Token.TokenSet) =>
      Effect.gen(function*() {
        yield* TokenFile.write(path, fresh)
        known = yield* TokenFile.stamp(path)
        unsaved = undefined
      }).pipe(Effect.provide(context))

    const fail = (error: RefreshError, tokens: Token.TokenSet) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        if (retryable(error)) {
          const failures = state.consecutiveFailures + 1
          const jitter = 0.8 + (yield* Random.next) * 0.4
          let wait = Math.min(MAX_BACKOFF, 1000 * 2 ** Math.min(failures - 1, 20)) * jitter
          const retryAt = error._tag === "RateLimited" || error._tag === "RefreshFailed" ? error.retryAt : undefined
          if (retryAt !== undefined) wait = Math.max(wait, retryAt - now)
          publish({
            status: "retrying",
            nextRefreshAt: now + wait,
            consecutiveFailures: failures,
            lastError: error.message
          })
          // The loop may be asleep on an older, later schedule (this failure came from POST /refresh): wake it.
          yield* Queue.offer(wakeups, undefined)
          yield* Effect.logWarning("retrying").pipe(Effect.annotateLogs({
            reason: error._tag === "RefreshFailed" ? error.cause : error._tag,
            error: error.message,
            attempt: failures,
            next_attempt_at: new Date(now + wait).toISOString(),
            token_valid: !tokens.isExpired(now)
          }))
          return
        }
        publish({
          status: "needs_login",
          nextRefreshAt: undefined,
          consecutiveFailures: state.consecutiveFailures + 1,
          lastError: error.message
        })
        yield* Effect.logError("needs login").pipe(
          Effect.annotateLogs({
            reason: error._tag === "RefreshFailed" ? error.cause : error._tag,
            error: error.message
          })
        )
      })

    /** A refresh succeeded and its result is on disk: publish it. */
    const refreshed = (fresh: Token.TokenSet, before: Token.TokenSet, at: number) =>
      Effect.gen(function*() {
        const same = fresh.sameAccessToken(before)
        publish({
          status: "ok",
          tokens: fresh,
          nextRefreshAt: yield* schedule(fresh, same),
          lastRefreshAt: at,
          consecutiveFailures: 0,
          lastError: undefined
        })
        yield* Effect.logInfo(same ? "refreshed; Strava returned the same token" : "refreshed").pipe(
          Effect.annotateLogs({
            expires_at: new Date(fresh.expiresAt * 1000).toISOString(),
            next_refresh_at: new Date(state.nextRefreshAt!).toISOString(),
            rotated: !fresh.sameRefreshToken(before)
          })
        )
        return fresh
      })

    /**
     * Before a refresh: re-read the file (someone may have refreshed), then either the tokens to refresh, or
     * (not forced, and not due any more) the current ones to return as they are.
     */
    const begin = (force: boolean) =>
      Effect.gen(function*() {
        yield* checkFile
        const tokens = state.tokens
        if (tokens === undefined) {
          return yield* new TokenSource.LoginRequired({ reason: "No Strava token is stored." })
        }
        const now = yield* Clock.currentTimeMillis
        if (!force && state.nextRefreshAt !== undefined && now < state.nextRefreshAt) {
          return { _tag: "Current", tokens } as const
        }
        if (state.status === "ok") publish({ status: "refreshing" })
        return { _tag: "Refresh", tokens, now } as const
      })

    /** One refresh by the helper process, then the file it wrote is adopted. */
    const refreshByHelper = (helper: Effect.Effect<void, RefreshError>, force: boolean) =>
      Effect.gen(function*() {
        const start = yield* begin(force)
        if (start._tag === "Current") return start.tokens
        const { now, tokens } = start
        const result = yield* Effect.either(TokenSource.shielded(helper))
        if (result._tag === "Left") {
          const error = result.left
          if (error._tag === "RefreshFailed" && error.unsaved !== undefined) {
            // Strava answered, the helper could not write: keep the set and write it on the next tick.
            const kept = yield* Effect.either(TokenFile.decode(path, Redacted.value(error.unsaved)))
            if (kept._tag === "Right") unsaved = kept.right
          }
          yield* fail(error, tokens)
          return yield* Effect.fail(error)
        }
        known = Option.none() // the helper wrote the file: read it whatever its stamp
        yield* readIfChanged(false) // logged below as "refreshed"
        return yield* refreshed(state.tokens ?? tokens, tokens, now)
      }).pipe(Effect.provide(context))

    /** Writes a set Strava answered but that could not be written then; backs off while the write fails. */
    const writeUnsaved = (pending: Token.TokenSet) =>
      TokenFile.withLock(
        path,
        Effect.gen(function*() {
          yield* persist(pending)
          yield* adopt(pending, known)
          return pending
        })
      ).pipe(
        Effect.tapError((error) => fail(error, pending)),
        Effect.provide(context)
      )

    /**
     * One refresh: first any set still to be written; else by the helper; else here, under the file lock,
     * after re-reading the file, uninterruptible from request to write.
     */
    const refreshOnce = (force: boolean): Effect.Effect<Token.TokenSet, RefreshError> =>
      unsaved !== undefined
        ? writeUnsaved(unsaved)
        : options.helper !== undefined
        ? refreshByHelper(options.helper, force)
        : TokenFile.withLock(
          path,
          Effect.gen(function*() {
            const start = yield* begin(force)
            if (start._tag === "Current") return start.tokens
            const { now, tokens } = start
            const result = yield* TokenSource.shielded(Effect.either(oauth.refresh(tokens)))
            if (result._tag === "Left") {
              yield* fail(result.left, tokens)
              return yield* Effect.fail(result.left)
            }
            const fresh = result.right
            const wrote = yield* Effect.either(persist(fresh))
            if (wrote._tag === "Left") {
              unsaved = fresh // never drop a rotated refresh token; written again on the next tick
              yield* fail(wrote.left, tokens)
              return yield* Effect.fail(wrote.left)
            }
            return yield* refreshed(fresh, tokens, now)
          }),
          { timeout: "20 seconds" }
        ).pipe(Effect.provide(context), Effect.uninterruptible)

    /** Joins the refresh in flight, or starts one. */
    const shared = (force: boolean): Effect.Effect<Token.TokenSet, RefreshError> =>
      Effect.suspend(() => {
        if (inflight !== undefined) return Deferred.await(inflight)
        return Effect.gen(function*() {
          const done = yield* Deferred.make<Token.TokenSet, RefreshError>()
          inflight = done
          const exit = yield* Effect.exit(refreshOnce(force))
          inflight = undefined
          yield* Deferred.done(done, exit)
          return yield* exit
        }).pipe(Effect.uninterruptible)
      })

    const recheck = Duration.toMillis(options.recheck ?? RECHECK)

    const tick = Effect.gen(function*() {
      yield* checkFile
      const now = yield* Clock.currentTimeMillis
      const due = state.nextRefreshAt
      if ((unsaved !== undefined || state.tokens !== undefined) && due !== undefined && now >= due) {
        yield* Effect.ignore(shared(false))
        return
      }
      const wait = due === undefined ? recheck : Math.max(0, Math.min(recheck, due - now))
      yield* Queue.take(wakeups).pipe(Effect.timeout(Duration.millis(wait)), Effect.ignore)
    })

    const run = Effect.gen(function*() {
      if (marginMillis > HOUR) {
        yield* Effect.logWarning(
          `a refresh margin of ${Duration.format(options.margin)} gains nothing: Strava mints a new token only ` +
            "in the last hour, so the first refresh each cycle returns the same token"
        )
      }
      yield* checkFile
      return yield* Effect.forever(tick)
    })

    return {
      snapshot: () => state,
      refreshNow: shared(true),
      load: checkFile,
      wake: Effect.asVoid(Queue.offer(wakeups, undefined)),
      replaceOAuth: (next) => Effect.sync(() => void (oauth = next)),
      run
    }
  })

/**
 * The failure policy: what is worth retrying with the same grant. Transient failures, a token file that
 * could not be written, and statuses this version does not know are retried; a refused grant or app is not.
 *
 * @since 0.1.0
 * @category predicates
 */
export const retryable = (error: RefreshError): boolean =>
  // A helper's RefreshFailed is `transient` exactly when this policy said so in the helper.
  error.transient || error._tag === "TokenFileError" || error._tag === "UnexpectedResponse"

/**
 * Whether a snapshot has a token that can be served at `nowMillis`.
 *
 * @since 0.1.0
 * @category predicates
 */
export const servable = (snapshot: Snapshot, nowMillis: number): snapshot is Snapshot & { tokens: Token.TokenSet } =>
  snapshot.status !== "needs_login" && snapshot.tokens !== undefined && !snapshot.tokens.isExpired(nowMillis)

/**
 * The access token as text, for the socket's hot path.
 *
 * @since 0.1.0
 * @category encoding
 */
export const tokenValue = (tokens: Token.TokenSet): string => Redacted.value(tokens.accessToken)

/**
 * The `/token.json` body.
 *
 * @since 0.1.0
 * @category encoding
 */
export const tokenJson = (tokens: Token.TokenSet) => ({
  access_token: Redacted.value(tokens.accessToken),
  token_type: tokens.tokenType,
  expires_at: tokens.expiresAt,
  scope: tokens.scopes.join(","),
  athlete_id: tokens.athlete?.id ?? null
})
