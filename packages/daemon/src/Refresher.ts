/**
 * The daemon's refresher: core's refresh engine (`RefreshEngine`) over the token file, driven by a loop,
 * and the snapshot the socket serves.
 *
 * The engine decides everything about a refresh (when, the locked sequence, the failure policy, the backoff,
 * the one-hour rule); this module only runs its loop and shows its state:
 *
 * - **The loop** re-reads the file (`sync`) and acts when the engine says the grant is due; it never sleeps
 *   more than `recheck` (30 s), so a laptop waking from suspend or a clock jump refreshes at once instead of
 *   trusting a timer that stopped. A change in the directory, SIGHUP or a failure wakes it early.
 * - **The snapshot** is the engine's state as the socket and `status` show it (`ok`, `refreshing`,
 *   `retrying`, `needs_login`), rebuilt only when the state changes, so the hot path reads one object.
 * - **The executor** is where a refresh runs: in production a detached helper process (`Helper`), which runs
 *   the same engine's `refreshOnce` and survives a SIGKILL of the daemon; in this process by default.
 *
 * @since 0.1.0
 * @internal
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type { Token } from "@strava-auth/core"
import { GrantStore, RefreshEngine, StravaOAuth } from "@strava-auth/core"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"

import * as Metrics from "./Metrics.js"
import * as TokenFile from "./TokenFile.js"
import * as Wire from "./Wire.js"

/**
 * The states on the wire (`/health`'s `status`).
 *
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
export type RefreshError = RefreshEngine.RefreshError

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
  /** The least time between two requests to Strava; 30 seconds. */
  readonly floor?: Duration.Duration | undefined
  /** Where a refresh runs (`Helper.executor`); in this process, with the current client, by default. */
  readonly execute?: RefreshEngine.Executor | undefined
  /** Counts what each refresh came to (`Metrics`); a fresh set by default. */
  readonly counters?: Metrics.Counters | undefined
  /**
   * Runs on every turn of the loop, with the snapshot (systemd's watchdog ping and status): a loop wedged in a
   * refresh stops calling it.
   */
  readonly onTick?: ((snapshot: Snapshot) => Effect.Effect<void>) | undefined
  /** The longest wait between two turns of the loop (half the watchdog's interval); `recheck` by default. */
  readonly maxWait?: Duration.Duration | undefined
  /** The command that logs this grant in, for the messages (`strava-auth login` by default). */
  readonly login?: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Refresher {
  readonly snapshot: () => Snapshot
  /** Refresh now (POST /refresh): joins a refresh in flight; within the floor of the last one, the current set. */
  readonly refreshNow: Effect.Effect<RefreshEngine.RefreshResult, RefreshError>
  /** Reads the token file now (at start, before the socket opens, so the first request finds the token). */
  readonly load: Effect.Effect<void>
  /** Something changed on disk (the watcher) or SIGHUP: re-read the file at once. */
  readonly wake: Effect.Effect<void>
  /** The configuration changed (SIGHUP): use this client from now on, and lift an app-wide refusal. */
  readonly reconfigure: (oauth: StravaOAuth.StravaOAuthShape | undefined) => Effect.Effect<void>
  /** The loop; runs until interrupted. */
  readonly run: Effect.Effect<never>
  /** What the refreshes came to, for `/metrics`. */
  readonly counters: Metrics.Counters
}

const RECHECK = Duration.seconds(30)
const key = GrantStore.defaultKey

/**
 * The snapshot of an engine state.
 *
 * @since 0.2.0
 * @category encoding
 */
export const snapshotOf = (
  state: RefreshEngine.GrantState,
  nextRefreshAt: number | undefined,
  tokenFile: string,
  login = "strava-auth login"
): Snapshot =>
  RefreshEngine.GrantState.$match(state, {
    Empty: () => ({
      status: "needs_login" as const,
      tokens: undefined,
      nextRefreshAt: undefined,
      lastRefreshAt: undefined,
      consecutiveFailures: 0,
      lastError: `No token file at ${tokenFile}. Run \`${login}\`.`
    }),
    Active: (s) => ({
      status: "ok" as const,
      tokens: s.tokens,
      nextRefreshAt,
      lastRefreshAt: s.lastRefreshAt,
      consecutiveFailures: 0,
      lastError: undefined
    }),
    Refreshing: (s) => ({
      status: "refreshing" as const,
      tokens: s.tokens,
      nextRefreshAt: undefined,
      lastRefreshAt: s.lastRefreshAt,
      consecutiveFailures: s.failures,
      lastError: undefined
    }),
    Retrying: (s) => ({
      status: "retrying" as const,
      tokens: s.tokens,
      nextRefreshAt,
      lastRefreshAt: s.lastRefreshAt,
      consecutiveFailures: s.failures,
      lastError: s.lastError.message
    }),
    NeedsLogin: (s) => ({
      status: "needs_login" as const,
      tokens: s.tokens,
      nextRefreshAt: undefined,
      lastRefreshAt: s.lastRefreshAt,
      consecutiveFailures: s.failures,
      lastError: s.reason
    })
  })

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
    const store = yield* TokenFile.makeFileStore(options.tokenFile)
    const oauth = yield* Ref.make(yield* StravaOAuth.StravaOAuth)
    const counters = options.counters ?? Metrics.counters()
    const execute: RefreshEngine.Executor = Metrics.counting(
      counters,
      options.execute ??
        ((k, o) =>
          Effect.flatMap(Ref.get(oauth), (client) =>
            RefreshEngine.refreshOnce(k, o).pipe(
              Effect.provideService(GrantStore.GrantStore, store),
              Effect.provideService(StravaOAuth.StravaOAuth, client)
            )))
    )
    const engine = yield* RefreshEngine.make({ margin: options.margin, floor: options.floor, execute }).pipe(
      Effect.provideService(GrantStore.GrantStore, store)
    )
    const wakeups = yield* Queue.sliding<void>(1)
    const recheck = Math.min(
      Duration.toMillis(options.recheck ?? RECHECK),
      options.maxWait === undefined ? Infinity : Duration.toMillis(options.maxWait)
    )
    const onTick = options.onTick

    let shownFor: RefreshEngine.GrantState | undefined
    let shownNext: number | undefined
    let shown: Snapshot = snapshotOf(engine.state(key), undefined, options.tokenFile, options.login)
    const snapshot = (): Snapshot => {
      const state = engine.state(key)
      const next = engine.nextAttemptAt(key)
      if (state !== shownFor || next !== shownNext) {
        shownFor = state
        shownNext = next
        shown = snapshotOf(state, next, options.tokenFile, options.login)
      }
      return shown
    }

    const wake = Effect.asVoid(Queue.offer(wakeups, undefined))

    const tick = Effect.gen(function*() {
      yield* engine.sync(key)
      if (onTick !== undefined) yield* onTick(snapshot())
      const now = yield* Clock.currentTimeMillis
      const next = engine.nextAttemptAt(key)
      if (next !== undefined && now >= next) {
        yield* Effect.ignore(engine.refresh(key))
        return
      }
      const wait = next === undefined ? recheck : Math.max(0, Math.min(recheck, next - now))
      yield* Queue.take(wakeups).pipe(Effect.timeout(Duration.millis(wait)), Effect.ignore)
    })

    const run = Effect.gen(function*() {
      yield* engine.sync(key)
      return yield* Effect.forever(tick)
    })

    return {
      snapshot,
      // Whatever it came to, the loop re-plans: a failure's backoff, or the next refresh, may be sooner.
      refreshNow: engine.refresh(key, { force: true, coalesce: true }).pipe(Effect.ensuring(wake)),
      load: Effect.asVoid(engine.sync(key)),
      wake,
      reconfigure: (next) =>
        Effect.gen(function*() {
          if (next !== undefined) yield* Ref.set(oauth, next)
          yield* engine.resetApp
          yield* wake
        }),
      run,
      counters
    }
  })

/**
 * Whether a failure is worth retrying for the caller of `POST /refresh`: the daemon's own policy (it retries
 * everything but a dead grant by itself).
 *
 * @since 0.1.0
 * @category predicates
 */
export const retryable = (error: RefreshError): boolean => RefreshEngine.verdictOf(error) !== "grant"

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
export const tokenJson = (tokens: Token.TokenSet): Wire.TokenJson => ({
  version: Wire.version,
  access_token: Redacted.value(tokens.accessToken),
  token_type: tokens.tokenType,
  expires_at: tokens.expiresAt,
  scope: tokens.scopes.join(","),
  athlete_id: tokens.athlete?.id ?? null
})
