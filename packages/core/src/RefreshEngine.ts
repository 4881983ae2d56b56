/**
 * The one refresh engine. Every path that refreshes a grant runs it: core's `TokenSource` (apps), the
 * daemon's refresh helper process, `strava-auth token` and `refresh --local`, and the daemon's scheduler.
 *
 * It has three parts, each one named for what it does:
 *
 * 1. **The policy** (`verdictOf`, `backoff`, `writeRetry`): what a failure means and how long to wait.
 *    Transient failures are retried with the same grant; an error about the application (wrong client id or
 *    secret, app inactive) stops refreshing for the whole app until the configuration changes or a backoff
 *    retry succeeds, and never marks a grant as needing a login; only a refused grant does.
 * 2. **The locked procedure** (`refreshOnce`): under the grant's lock, re-read the store; if another
 *    process already refreshed, use that; else refresh at Strava and persist (compare-and-set) before anyone
 *    sees the new access token, shielded so that no interruption drops a rotated refresh token. A failed
 *    write is retried, then the fresh set is handed back inside `GrantUnsaved` for the caller to keep and
 *    write later (`persistUnsaved`): it is never dropped. A refresh token Strava refuses is checked against
 *    the store once more before the grant is declared dead.
 * 3. **The scheduler** (`make`): the state of each grant as a tagged union (`GrantState`), single flight per
 *    grant in the process, and when to try next. Strava's one-hour rule is learned, not assumed: a refresh
 *    that comes back with the same token at N seconds left proves Strava's threshold is below N, so the next
 *    attempt waits until half of that is left, and attempts are never closer than a floor. A margin longer
 *    than Strava's threshold, or a local clock running fast, can therefore never turn into a loop.
 *
 * Time comes from `Clock` (so `TestClock` drives days of refreshes in milliseconds); the wall clock is read
 * at every decision, never trusted from before a sleep.
 *
 * @since 0.2.0
 */
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Encoding from "effect/Encoding"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Match from "effect/Match"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"

import type { GrantStoreError } from "./GrantStore.js"
import { GrantStore } from "./GrantStore.js"
import type { StravaError } from "./StravaError.js"
import { StravaOAuth } from "./StravaOAuth.js"
import type { TokenSet } from "./Token.js"

// ---------------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------------

/**
 * There is no grant to use: never logged in, revoked, or the refresh token was refused. Permanent.
 *
 * @since 0.1.0
 * @category errors
 */
export class LoginRequired extends Schema.TaggedError<LoginRequired>()("LoginRequired", {
  reason: Schema.String
}) {
  /** @since 0.1.0 */
  get transient(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return `${this.reason} Log in to Strava again (strava-auth login).`
  }
}

/**
 * No valid token can be had right now (Strava unreachable and the token expired, the daemon not answering).
 * Transient: try again later.
 *
 * @since 0.1.0
 * @category errors
 */
export class TokenUnavailable extends Schema.TaggedError<TokenUnavailable>()("TokenUnavailable", {
  reason: Schema.String
}) {
  /** @since 0.1.0 */
  get transient(): boolean {
    return true
  }
  /** @since 0.1.0 */
  override get message(): string {
    return `No valid Strava access token is available right now: ${this.reason} Try again shortly.`
  }
}

/**
 * Strava answered a refresh (so the old refresh token is dead) but the store could not be written, even
 * after retries. Carries the fresh set, which whoever holds this error must keep and write later
 * (`persistUnsaved`). Its message carries no token.
 *
 * @since 0.2.0
 * @category errors
 */
export class GrantUnsaved extends Data.TaggedError("GrantUnsaved")<{
  readonly key: string
  readonly tokens: TokenSet
  /** The set it replaces in the store (the compare-and-set's expectation). */
  readonly previous: TokenSet
  readonly error: GrantStoreError
}> {
  /** @since 0.2.0 */
  get transient(): boolean {
    return true
  }
  /** @since 0.2.0 */
  override get message(): string {
    return `${this.error.message} Strava has already rotated the refresh token; the new one is kept in memory ` +
      "and written as soon as the store accepts it. Fix the store at once."
  }
}

/**
 * The refresh could not be run at all (the daemon's helper process did not start or gave no report).
 * Transient.
 *
 * @since 0.2.0
 * @category errors
 */
export class RefreshAborted extends Schema.TaggedError<RefreshAborted>()("RefreshAborted", {
  detail: Schema.String
}) {
  /** @since 0.2.0 */
  get transient(): boolean {
    return true
  }
  /** @since 0.2.0 */
  override get message(): string {
    return this.detail
  }
}

/**
 * Everything a refresh can fail with.
 *
 * @since 0.2.0
 * @category errors
 */
export type RefreshError = StravaError | GrantStoreError | LoginRequired | GrantUnsaved | RefreshAborted

// ---------------------------------------------------------------------------------------------------------
// The policy
// ---------------------------------------------------------------------------------------------------------

/**
 * What a failure means for the grant:
 * - `retry`: transient (network, 5xx, 429, a store that could not be read or written, a status this version
 *   does not know); the same grant is tried again after a backoff, and its valid token is still served.
 * - `app`: the application is refused (client id or secret wrong, app inactive). Every grant of the app is
 *   affected; refreshing stops until the configuration changes or a backoff retry succeeds. Grants are kept.
 * - `grant`: this grant is dead (refresh token refused, no grant stored, scope missing): a new login is needed.
 *
 * @since 0.2.0
 * @category policy
 */
export type Verdict = "retry" | "app" | "grant"

/**
 * The one failure policy.
 *
 * @since 0.2.0
 * @category policy
 */
export const verdictOf = (error: RefreshError): Verdict =>
  Match.value(error).pipe(
    Match.tagsExhaustive({
      InvalidGrant: () => "grant" as const,
      LoginRequired: () => "grant" as const,
      MissingScope: () => "grant" as const,
      Unauthorized: () => "grant" as const,
      InvalidClient: () => "app" as const,
      AppInactive: () => "app" as const,
      RateLimited: () => "retry" as const,
      ServerError: () => "retry" as const,
      TransportError: () => "retry" as const,
      UnexpectedResponse: () => "retry" as const,
      GrantStoreError: () => "retry" as const,
      GrantUnsaved: () => "retry" as const,
      RefreshAborted: () => "retry" as const
    })
  )

/**
 * The one backoff between failed attempts: 1 s doubling, capped at 5 minutes, jittered ±20 %.
 *
 * @since 0.2.0
 * @category policy
 */
export const backoff: Schedule.Schedule<Duration.Duration> = Schedule.exponential("1 second").pipe(
  Schedule.either(Schedule.spaced("5 minutes")),
  Schedule.jittered,
  Schedule.delays
)

/**
 * The wait before the next attempt after `failures` consecutive failures, from `backoff`.
 *
 * @since 0.2.0
 * @category policy
 */
export const backoffMillis = (failures: number): Effect.Effect<number> =>
  // The schedule's cap is reached after nine steps; counting further changes nothing.
  Effect.map(
    Schedule.run(backoff, 0, Array.from({ length: Math.min(Math.max(failures, 1), 12) }, () => undefined)),
    (delays) => Duration.toMillis(Chunk.last(delays).pipe(Option.getOrElse(() => Duration.minutes(5))))
  )

/**
 * How a fresh set is written when the first write fails: four more tries over about three seconds.
 *
 * @since 0.2.0
 * @category policy
 */
export const writeRetry: Schedule.Schedule<unknown> = Schedule.exponential("200 millis").pipe(
  Schedule.intersect(Schedule.recurs(4))
)

/**
 * The default margin: refresh when 45 minutes are left, inside Strava's hour, with most of that hour left
 * for retries if Strava is down.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultMargin: Duration.Duration = Duration.minutes(45)

/**
 * Strava mints a new access token only when the current one has at most this long left (on real Strava).
 * The scheduler does not rely on it: it learns the threshold from Strava's answers.
 *
 * @since 0.1.0
 * @category constants
 */
export const oneHourRule: Duration.Duration = Duration.hours(1)

/**
 * The least time between two refresh requests for one grant (closer to expiry: half the time left).
 *
 * @since 0.2.0
 * @category constants
 */
export const defaultFloor: Duration.Duration = Duration.seconds(30)

/**
 * Runs `effect` to the end even when the caller is interrupted (the caller then waits for it), while the
 * effect's own timeouts keep working. A refresh request must not be abandoned half way (Strava may already
 * have rotated the refresh token), nor hang forever inside an uninterruptible region.
 *
 * @since 0.1.0
 * @category combinators
 */
export const shielded = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.uninterruptible(Effect.flatMap(Effect.forkDaemon(Effect.interruptible(effect)), Fiber.join))

// ---------------------------------------------------------------------------------------------------------
// The locked procedure
// ---------------------------------------------------------------------------------------------------------

/**
 * What one refresh came to.
 * - `Current`: nothing was asked of Strava: the stored set is not due (any more), or another process
 *   refreshed it meanwhile, or a refused refresh token turned out to be already rotated by someone else.
 * - `Refreshed`: Strava answered and the answer is durable in the store. `previous` is the set it replaced;
 *   an answer with the same access token (the one-hour rule) is a `Refreshed` too.
 *
 * @since 0.2.0
 * @category models
 */
export type Outcome = Data.TaggedEnum<{
  Current: { readonly tokens: TokenSet }
  Refreshed: { readonly tokens: TokenSet; readonly previous: TokenSet }
}>

/**
 * @since 0.2.0
 * @category models
 */
export const Outcome = Data.taggedEnum<Outcome>()

/**
 * @since 0.2.0
 * @category models
 */
export interface RefreshOptions {
  /** Refresh even when the stored set is not within the margin. */
  readonly force: boolean
  /** Refresh when this little is left. Default 45 minutes. */
  readonly margin?: Duration.DurationInput | undefined
  /**
   * The set the caller holds. When the store holds another one, someone else refreshed (or logged in)
   * meanwhile: that one is used, and Strava is not asked.
   */
  readonly seen?: TokenSet | undefined
  /** The same, as `fingerprint(seen)`, for a process that must not be handed the tokens (the helper). */
  readonly seenFingerprint?: string | undefined
}

/**
 * A digest of a set (SHA-256 of both tokens and the expiry, hex): tells whether the store still holds the set
 * a caller saw, without handing the tokens to another process.
 *
 * @since 0.2.0
 * @category refreshing
 */
export const fingerprint = (tokens: TokenSet): Effect.Effect<string> =>
  Effect.promise(() =>
    globalThis.crypto.subtle.digest(
      "SHA-256",
      new TextEncoder().encode(
        `${Redacted.value(tokens.accessToken)}\n${Redacted.value(tokens.refreshToken)}\n${tokens.expiresAt}`
      )
    )
  ).pipe(Effect.map((digest) => Encoding.encodeHex(new Uint8Array(digest))))

const differs = (a: TokenSet, b: TokenSet): boolean => !a.sameRefreshToken(b) || !a.sameAccessToken(b)

const loadFor = (key: string) =>
  Effect.flatMap(GrantStore, (store) =>
    Effect.flatMap(store.get(key), (stored) =>
      Option.match(stored, {
        onNone: () => Effect.fail(new LoginRequired({ reason: `No Strava grant is stored for "${key}".` })),
        onSome: Effect.succeed
      })))

/** Writes `fresh` over `previous` (compare-and-set), retrying; a newer grant in the store wins. */
const persist = (key: string, fresh: TokenSet, previous: TokenSet) =>
  Effect.flatMap(GrantStore, (store) =>
    store.put(key, fresh, { replaces: previous }).pipe(
      Effect.retry({ schedule: writeRetry, while: (e) => e._tag === "GrantStoreError" }),
      Effect.as(Outcome.Refreshed({ tokens: fresh, previous })),
      Effect.catchTags({
        // Someone wrote a newer grant (a login) while we held the lock's predecessor: theirs is kept.
        StaleGrant: () =>
          Effect.map(loadFor(key), (tokens) => Outcome.Current({ tokens })).pipe(
            Effect.tap(() => Effect.logWarning("a newer grant was stored meanwhile; kept it").pipe(annotate(key)))
          ),
        GrantStoreError: (error) => Effect.fail(new GrantUnsaved({ key, tokens: fresh, previous, error }))
      })
    ))

const annotate = (key: string) => Effect.annotateLogs({ grant: key })

/**
 * The refresh sequence, under the grant's lock (see the module's documentation). Strava's answer and its
 * write run to their end even if the caller is interrupted.
 *
 * @since 0.2.0
 * @category refreshing
 */
export const refreshOnce = (
  key: string,
  options: RefreshOptions
): Effect.Effect<Outcome, RefreshError, GrantStore | StravaOAuth> =>
  Effect.gen(function*() {
    const store = yield* GrantStore
    const oauth = yield* StravaOAuth
    const margin = options.margin ?? defaultMargin
    return yield* store.withLock(
      key,
      Effect.gen(function*() {
        const stored = yield* loadFor(key) // re-read: another process may have refreshed while we waited
        const now = yield* Clock.currentTimeMillis
        if (options.seen !== undefined && differs(stored, options.seen)) return Outcome.Current({ tokens: stored })
        if (options.seenFingerprint !== undefined && (yield* fingerprint(stored)) !== options.seenFingerprint) {
          return Outcome.Current({ tokens: stored })
        }
        if (!options.force && !stored.expiresWithin(margin, now)) return Outcome.Current({ tokens: stored })
        return yield* shielded(
          oauth.refresh(stored).pipe(
            Effect.flatMap((fresh) =>
              // The same token came back unchanged (the one-hour rule): nothing new to write.
              differs(fresh, stored)
                ? persist(key, fresh, stored)
                : Effect.succeed(Outcome.Refreshed({ tokens: stored, previous: stored }))
            ),
            Effect.catchTag("InvalidGrant", (refused) =>
              // Before declaring the grant dead: did someone rotate it in the store meanwhile?
              Effect.flatMap(loadFor(key), (again) =>
                again.sameRefreshToken(stored)
                  ? Effect.fail(refused)
                  : Effect.succeed(Outcome.Current({ tokens: again }))))
          )
        )
      })
    )
  }).pipe(Effect.withSpan("RefreshEngine.refreshOnce", { attributes: { grant: key } }))

/**
 * Writes a set that Strava answered but that could not be written then (under the grant's lock). A newer
 * grant in the store (a new login) wins.
 *
 * @since 0.2.0
 * @category refreshing
 */
export const persistUnsaved = (unsaved: GrantUnsaved): Effect.Effect<Outcome, RefreshError, GrantStore> =>
  Effect.flatMap(
    GrantStore,
    (store) => store.withLock(unsaved.key, persist(unsaved.key, unsaved.tokens, unsaved.previous))
  )
    .pipe(Effect.uninterruptible)

// ---------------------------------------------------------------------------------------------------------
// The scheduler
// ---------------------------------------------------------------------------------------------------------

/**
 * The state of one grant, as the scheduler knows it.
 * - `Empty`: no grant is stored (never logged in, removed).
 * - `Active`: a grant whose next refresh is scheduled.
 * - `Refreshing`: a refresh is in flight.
 * - `Retrying`: the last attempt failed and is tried again at `nextAttemptAt`; the current token (when there is
 *   one and it is valid) is still served. `unsaved` is a set Strava answered that is not yet in the store;
 *   `appRefused` says that the app, not the grant, was refused.
 * - `NeedsLogin`: the grant is dead; nothing is tried until the store holds another one.
 *
 * @since 0.2.0
 * @category models
 */
export type GrantState = Data.TaggedEnum<{
  Empty: { readonly reason: string }
  Active: {
    readonly tokens: TokenSet
    readonly nextRefreshAt: number
    readonly lastRefreshAt: number | undefined
  }
  Refreshing: {
    readonly tokens: TokenSet | undefined
    readonly since: number
    readonly failures: number
    readonly lastRefreshAt: number | undefined
  }
  Retrying: {
    readonly tokens: TokenSet | undefined
    readonly failures: number
    readonly nextAttemptAt: number
    readonly lastError: RefreshError
    readonly lastRefreshAt: number | undefined
    readonly unsaved: GrantUnsaved | undefined
    readonly appRefused: boolean
  }
  NeedsLogin: {
    readonly tokens: TokenSet | undefined
    readonly reason: string
    readonly failures: number
    readonly lastRefreshAt: number | undefined
  }
}>

/**
 * @since 0.2.0
 * @category models
 */
export const GrantState = Data.taggedEnum<GrantState>()

/**
 * The token set a state holds, if any.
 *
 * @since 0.2.0
 * @category getters
 */
export const tokensOf = (state: GrantState): TokenSet | undefined => state._tag === "Empty" ? undefined : state.tokens

/**
 * When the last refresh succeeded, if any.
 *
 * @since 0.2.0
 * @category getters
 */
export const lastRefreshOf = (state: GrantState): number | undefined =>
  state._tag === "Empty" ? undefined : state.lastRefreshAt

/**
 * Consecutive failures so far.
 *
 * @since 0.2.0
 * @category getters
 */
export const failuresOf = (state: GrantState): number =>
  state._tag === "Retrying" || state._tag === "Refreshing" || state._tag === "NeedsLogin" ? state.failures : 0

/**
 * Runs one refresh for the scheduler: `refreshOnce` in this process (`inProcess`), or in another process
 * that runs it (the daemon's helper).
 *
 * @since 0.2.0
 * @category models
 */
export type Executor = (key: string, options: RefreshOptions) => Effect.Effect<Outcome, RefreshError>

/**
 * The executor that runs `refreshOnce` in this process.
 *
 * @since 0.2.0
 * @category constructors
 */
export const inProcess: Effect.Effect<Executor, never, GrantStore | StravaOAuth> = Effect.map(
  Effect.context<GrantStore | StravaOAuth>(),
  (context) => (key, options) => Effect.provide(refreshOnce(key, options), context)
)

/**
 * What a scheduled or requested refresh gave: a token set, and how.
 * `coalesced`: a forced refresh asked within the floor of the last attempt got the current set.
 *
 * @since 0.2.0
 * @category models
 */
export interface RefreshResult {
  readonly tokens: TokenSet
  readonly outcome: "refreshed" | "same" | "current" | "coalesced"
}

/**
 * @since 0.2.0
 * @category models
 */
export interface EngineOptions {
  /** Refresh when this little is left. Default 45 minutes. */
  readonly margin?: Duration.DurationInput | undefined
  /** The least time between two requests for one grant. Default 30 seconds. */
  readonly floor?: Duration.DurationInput | undefined
  /** How a refresh runs. */
  readonly execute: Executor
}

/**
 * @since 0.2.0
 * @category models
 */
export interface Engine {
  /** The grant's state now (synchronous, for hot paths). */
  readonly state: (key: string) => GrantState
  /** The keys this engine has seen. */
  readonly keys: () => ReadonlyArray<string>
  /** Re-reads the store and adopts what changed there (a login, another process's refresh, a removal). */
  readonly sync: (key: string) => Effect.Effect<GrantState>
  /** When the scheduler should next act for the grant (epoch ms), or `undefined` when it waits for a login. */
  readonly nextAttemptAt: (key: string) => number | undefined
  /** Refreshes now (single flight: joins a refresh in flight). `force`: even when not due. */
  readonly refresh: (
    key: string,
    options?: { readonly force?: boolean; readonly coalesce?: boolean }
  ) => Effect.Effect<RefreshResult, RefreshError>
  /** A valid token set for an app: the current one, refreshed first when due. */
  readonly token: (key: string) => Effect.Effect<TokenSet, RefreshError | TokenUnavailable>
  /** Strava refused `rejected` (a 401): a set with another access token, refreshing if need be. */
  readonly invalidate: (
    key: string,
    rejected: Redacted.Redacted<string>
  ) => Effect.Effect<TokenSet, RefreshError | TokenUnavailable>
  /** The configuration changed: lift an app-wide refusal and try again now. */
  readonly resetApp: Effect.Effect<void>
}

interface Entry {
  state: GrantState
  loaded: boolean
  inflight: Deferred.Deferred<RefreshResult, RefreshError> | undefined
  /** The least time left at which Strava answered with the same token: its threshold is below this. */
  ceiling: number | undefined
  /** Answers with the same token in a row. */
  sameStreak: number
  lastAttemptAt: number | undefined
}

const iso = (millis: number) => new Date(millis).toISOString()

/** The longest wait the floor grows to after answers with the same token. */
const MAX_SAME_GAP = 15 * 60_000

/**
 * Builds the scheduler over the `GrantStore`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: EngineOptions): Effect.Effect<Engine, never, GrantStore> =>
  Effect.gen(function*() {
    const store = yield* GrantStore
    const margin = Duration.toMillis(options.margin ?? defaultMargin)
    const floor = Duration.toMillis(options.floor ?? defaultFloor)
    const entries = new Map<string, Entry>()
    let app: { readonly failures: number; readonly until: number; readonly error: RefreshError } | undefined

    const entry = (key: string): Entry => {
      let e = entries.get(key)
      if (e === undefined) {
        e = {
          state: GrantState.Empty({ reason: "Not read yet." }),
          loaded: false,
          inflight: undefined,
          ceiling: undefined,
          sameStreak: 0,
          lastAttemptAt: undefined
        }
        entries.set(key, e)
      }
      return e
    }

    /**
     * When to refresh `tokens`: the (learned) margin before expiry, less jitter. After an answer with the same
     * token, never sooner than the floor, doubled for each such answer in a row (at most 15 minutes): a clock
     * that runs fast by more than Strava's threshold then costs a few requests per cycle, never a loop. After a
     * new token (a fresh mint), at least half of what is left, or the floor.
     */
    /** The margin, shortened to half of the least time left at which Strava answered with the same token. */
    const effectiveMargin = (e: Entry) => e.ceiling === undefined ? margin : Math.min(margin, e.ceiling / 2)

    const scheduleFor = (e: Entry, tokens: TokenSet, now: number, after: "none" | "new" | "same") =>
      Effect.map(Random.next, (r) => {
        const effective = effectiveMargin(e)
        let at = tokens.expiresAt * 1000 - effective - r * Math.min(30_000, effective / 10)
        if (after === "same") {
          at = Math.max(at, now + Math.min(MAX_SAME_GAP, floor * 2 ** Math.min(e.sameStreak - 1, 10)))
        }
        if (after === "new") at = Math.max(at, now + Math.min(floor, Math.max(1000, tokens.remainingMillis(now) / 2)))
        return Math.round(at)
      })

    /** Whether `tokens` are within the (learned) margin now. */
    const dueNow = (e: Entry, tokens: TokenSet, now: number) => {
      const effective = effectiveMargin(e)
      return tokens.remainingMillis(now) <= effective + Math.min(30_000, effective / 10)
    }

    const adopt = (key: string, e: Entry, tokens: TokenSet, now: number, after: "none" | "new") =>
      Effect.gen(function*() {
        const nextRefreshAt = yield* scheduleFor(e, tokens, now, after)
        e.state = GrantState.Active({ tokens, nextRefreshAt, lastRefreshAt: lastRefreshOf(e.state) })
        yield* Effect.logInfo("grant loaded").pipe(
          Effect.annotateLogs({ expires_at: iso(tokens.expiresAt * 1000), next_refresh_at: iso(nextRefreshAt) }),
          annotate(key)
        )
      })

    const succeeded = (key: string, e: Entry, outcome: Outcome, now: number) =>
      Effect.gen(function*() {
        if (outcome._tag === "Current") {
          yield* adopt(key, e, outcome.tokens, now, "new")
          return { tokens: outcome.tokens, outcome: "current" } satisfies RefreshResult
        }
        const { previous, tokens } = outcome
        const same = tokens.sameAccessToken(previous)
        if (same) {
          // Strava's threshold is below what was left: wait until half of that is left next time (never less
          // than two floors: with a clock fast by more than the threshold, "left" is nothing or negative).
          const left = previous.remainingMillis(e.lastAttemptAt ?? now)
          e.ceiling = Math.max(2 * floor, Math.min(e.ceiling ?? Number.POSITIVE_INFINITY, left))
          e.sameStreak += 1
          if (left <= floor) {
            yield* Effect.logWarning(
              "Strava returned the same token although it expires by this machine's clock: the clock is probably " +
                "fast (check NTP); refreshing less often until Strava mints"
            ).pipe(Effect.annotateLogs({ expires_at: iso(tokens.expiresAt * 1000) }), annotate(key))
          }
        } else e.sameStreak = 0
        app = undefined
        const nextRefreshAt = yield* scheduleFor(e, tokens, now, same ? "same" : "new")
        e.state = GrantState.Active({ tokens, nextRefreshAt, lastRefreshAt: now })
        yield* Effect.logInfo(same ? "refreshed; Strava returned the same token" : "refreshed").pipe(
          Effect.annotateLogs({
            expires_at: iso(tokens.expiresAt * 1000),
            next_refresh_at: iso(nextRefreshAt),
            rotated: !tokens.sameRefreshToken(previous)
          }),
          annotate(key)
        )
        return { tokens, outcome: same ? "same" : "refreshed" } satisfies RefreshResult
      })

    const failed = (key: string, e: Entry, error: RefreshError, now: number, kept?: GrantUnsaved) =>
      Effect.gen(function*() {
        const tokens = tokensOf(e.state)
        const failures = failuresOf(e.state) + 1
        const lastRefreshAt = lastRefreshOf(e.state)
        const verdict = verdictOf(error)
        if (verdict === "grant") {
          e.state = GrantState.NeedsLogin({ tokens, reason: error.message, failures, lastRefreshAt })
          yield* Effect.logError("needs login").pipe(
            Effect.annotateLogs({ reason: error._tag, error: error.message }),
            annotate(key)
          )
          return
        }
        let nextAttemptAt: number
        if (verdict === "app") {
          const appFailures = (app?.failures ?? 0) + 1
          app = { failures: appFailures, until: now + (yield* backoffMillis(appFailures)), error }
          nextAttemptAt = app.until
        } else {
          const wait = yield* backoffMillis(failures)
          nextAttemptAt = now + (error._tag === "RateLimited" ? Math.max(wait, error.retryAt - now) : wait)
        }
        // A set Strava answered is never dropped: the newest unsaved one is kept until it is written.
        const unsaved = error._tag === "GrantUnsaved"
          ? error
          : kept ?? (e.state._tag === "Retrying" ? e.state.unsaved : undefined)
        e.state = GrantState.Retrying({
          tokens,
          failures,
          nextAttemptAt,
          lastError: error,
          lastRefreshAt,
          unsaved,
          appRefused: verdict === "app"
        })
        yield* Effect.logWarning(verdict === "app" ? "the app is refused; retrying" : "retrying").pipe(
          Effect.annotateLogs({
            reason: error._tag,
            error: error.message,
            attempt: failures,
            next_attempt_at: iso(nextAttemptAt),
            token_valid: tokens !== undefined && !tokens.isExpired(now)
          }),
          annotate(key)
        )
      })

    const sync = (key: string): Effect.Effect<GrantState> =>
      Effect.gen(function*() {
        const e = entry(key)
        e.loaded = true
        if (e.inflight !== undefined) return e.state // the refresh in flight settles the state
        const read = yield* Effect.either(store.get(key))
        const now = yield* Clock.currentTimeMillis
        const held = tokensOf(e.state)
        if (read._tag === "Left") {
          const known = e.state._tag === "Retrying" && e.state.lastError.message === read.left.message
          if (!known) yield* failed(key, e, read.left, now)
          return e.state
        }
        if (Option.isNone(read.right)) {
          const wasHeld = e.state._tag !== "Empty" || held !== undefined
          e.state = GrantState.Empty({ reason: `No Strava grant is stored for "${key}".` })
          if (wasHeld) {
            yield* Effect.logWarning("needs login").pipe(
              Effect.annotateLogs({ reason: "no grant stored" }),
              annotate(key)
            )
          }
          return e.state
        }
        const stored = read.right.value
        if (held !== undefined && !differs(stored, held)) {
          if (
            e.state._tag === "Retrying" && e.state.lastError._tag === "GrantStoreError" && e.state.unsaved === undefined
          ) {
            // The store reads again: back to the schedule (a set still to be written keeps its retry).
            yield* adopt(key, e, stored, now, "none")
          }
          return e.state
        }
        if (e.state._tag === "Retrying" && e.state.unsaved !== undefined) {
          if (!stored.sameRefreshToken(e.state.unsaved.previous)) {
            yield* Effect.logWarning("a new grant was stored; the unsaved refresh is superseded").pipe(annotate(key))
          } else return e.state
        }
        yield* adopt(key, e, stored, now, "none")
        return e.state
      })

    const nextAttemptAt = (key: string): number | undefined => {
      const state = entry(key).state
      const at = state._tag === "Active"
        ? state.nextRefreshAt
        : state._tag === "Retrying"
        ? state.nextAttemptAt
        : undefined
      return at === undefined || app === undefined ? at : Math.max(at, app.until)
    }

    const refresh: Engine["refresh"] = (key, request = {}) =>
      Effect.suspend(() => {
        const e = entry(key)
        if (e.inflight !== undefined) return Deferred.await(e.inflight)
        return Effect.gen(function*() {
          if (!e.loaded || e.state._tag === "Empty" || e.state._tag === "NeedsLogin") yield* sync(key)
          const now = yield* Clock.currentTimeMillis
          const state = e.state
          // Waiting for a login: nothing is asked of Strava until the store holds another grant.
          if (state._tag === "Empty" || state._tag === "NeedsLogin") {
            return yield* new LoginRequired({ reason: state.reason })
          }
          const current = tokensOf(state)
          const unsaved = state._tag === "Retrying" ? state.unsaved : undefined
          if (request.coalesce === true && unsaved === undefined) {
            // A request from outside (POST /refresh) spends nothing the schedule would not: within a backoff or
            // an app-wide refusal it gets the reason; within the floor of the last attempt, the current set.
            if (state._tag === "Retrying" && now < state.nextAttemptAt) return yield* Effect.fail(state.lastError)
            if (app !== undefined && now < app.until) return yield* Effect.fail(app.error)
            if (
              state._tag === "Active" && e.lastAttemptAt !== undefined && now - e.lastAttemptAt < floor &&
              !state.tokens.isExpired(now)
            ) {
              return { tokens: state.tokens, outcome: "coalesced" } satisfies RefreshResult
            }
          }
          if (request.force !== true && unsaved === undefined && current !== undefined && !dueNow(e, current, now)) {
            // A retry of a forced refresh whose set is not due: back to the schedule, Strava is not asked.
            yield* adopt(key, e, current, now, "none")
            return { tokens: current, outcome: "current" } satisfies RefreshResult
          }
          const done = yield* Deferred.make<RefreshResult, RefreshError>()
          e.inflight = done
          e.state = GrantState.Refreshing({
            tokens: current,
            since: now,
            failures: failuresOf(state),
            lastRefreshAt: lastRefreshOf(state)
          })
          e.lastAttemptAt = now
          // The engine has decided: the refresh is forced, unless the store holds another set than `seen`.
          const attempt = unsaved !== undefined
            ? Effect.provideService(persistUnsaved(unsaved), GrantStore, store)
            : options.execute(key, { force: true, margin, seen: current })
          const outcome = yield* Effect.either(
            attempt.pipe(
              Effect.catchAllDefect((defect) =>
                Effect.fail(new RefreshAborted({ detail: `the refresh failed unexpectedly: ${String(defect)}` }))
              )
            )
          )
          const after = yield* Clock.currentTimeMillis
          const result = outcome._tag === "Right"
            ? Exit.succeed(yield* succeeded(key, e, outcome.right, after))
            : Exit.fail(outcome.left)
          if (outcome._tag === "Left") yield* failed(key, e, outcome.left, after, unsaved)
          e.inflight = undefined
          yield* Deferred.done(done, result)
          return yield* result
        }).pipe(Effect.uninterruptible, Effect.withSpan("RefreshEngine.refresh", { attributes: { grant: key } }))
      })

    const token: Engine["token"] = (key) =>
      Effect.gen(function*() {
        const e = entry(key)
        if (!e.loaded || e.state._tag === "Empty" || e.state._tag === "NeedsLogin") yield* sync(key)
        const now = yield* Clock.currentTimeMillis
        const state = e.state
        if (state._tag === "Empty") return yield* new LoginRequired({ reason: state.reason })
        if (state._tag === "NeedsLogin") return yield* new LoginRequired({ reason: state.reason })
        const held = tokensOf(state)
        const next = nextAttemptAt(key)
        const valid = held !== undefined && !held.isExpired(now)
        if (state._tag !== "Refreshing" && next !== undefined && now < next) {
          // Strava's last answer was this same token although it expires by this clock (a fast clock): Strava
          // holds it valid, and asking again before the scheduled attempt would loop.
          if (valid) return held
          if (state._tag === "Active" && entry(key).sameStreak > 0) return state.tokens
          if (state._tag === "Retrying") {
            return yield* new TokenUnavailable({ reason: `${state.lastError.message} Next attempt at ${iso(next)}.` })
          }
        }
        const result = yield* Effect.either(refresh(key))
        if (result._tag === "Right") return result.right.tokens
        if (valid && verdictOf(result.left) !== "grant") return held
        return yield* result.left
      })

    const invalidate: Engine["invalidate"] = (key, rejected) =>
      Effect.gen(function*() {
        const e = entry(key)
        if (!e.loaded) yield* sync(key)
        const held = tokensOf(e.state)
        if (held !== undefined && Redacted.value(held.accessToken) !== Redacted.value(rejected)) return held
        const now = yield* Clock.currentTimeMillis
        // One refresh per floor for rejected tokens too: a 401 loop cannot become a refresh loop.
        if (held !== undefined && e.lastAttemptAt !== undefined && now - e.lastAttemptAt < floor) return held
        return (yield* refresh(key, { force: true })).tokens
      })

    const resetApp = Effect.gen(function*() {
      app = undefined
      const now = yield* Clock.currentTimeMillis
      for (const e of entries.values()) {
        if (e.state._tag === "Retrying" && e.state.appRefused) {
          e.state = GrantState.Retrying({ ...e.state, nextAttemptAt: now })
        }
      }
    })

    return {
      state: (key) => entry(key).state,
      keys: () => Array.from(entries.keys()),
      sync,
      nextAttemptAt,
      refresh,
      token,
      invalidate,
      resetApp
    }
  })
