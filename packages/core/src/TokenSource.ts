/**
 * Where an app gets a valid access token from.
 *
 * `TokenSource` is the interface the authenticated client uses. This module provides the auto-refreshing
 * source for apps that own their grant (`layerRefreshing`, over a `TokenStore` and `StravaOAuth`); the
 * daemon package provides sources that ask the daemon's socket or read its token file, which never refresh
 * by themselves, so an app can never race the daemon over a rotated refresh token.
 *
 * The refreshing source keeps these invariants:
 * - Single flight: one refresh at a time; callers that arrive meanwhile wait and get its result
 *   (100 concurrent callers cause one request).
 * - The new token set is written to the store before its access token is handed out, and the store is
 *   re-read under the lock before refreshing, so a rotated refresh token is never used stale or dropped.
 * - Strava's one-hour rule: a refresh while more than an hour is left returns the same token. That is a
 *   success, not a failure; the source then waits until the hour before trying again, so it never loops.
 * - A transient failure while the current token is still valid keeps serving it and backs off
 *   (1 s doubling to 5 min, or until a 429's window resets) instead of retrying on every call.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

import type { StravaError } from "./StravaError.js"
import { StravaOAuth } from "./StravaOAuth.js"
import type { TokenSet } from "./Token.js"
import type { TokenStoreError } from "./TokenStore.js"
import { TokenStore } from "./TokenStore.js"

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
 * @since 0.1.0
 * @category errors
 */
export type TokenError = StravaError | TokenStoreError | LoginRequired | TokenUnavailable

/**
 * @since 0.1.0
 * @category models
 */
export interface TokenSourceShape {
  /** A valid access token. */
  readonly get: Effect.Effect<Redacted.Redacted<string>, TokenError>
  /** Strava refused `rejected` (a 401): a token other than it, refreshing if need be. */
  readonly invalidate: (rejected: Redacted.Redacted<string>) => Effect.Effect<Redacted.Redacted<string>, TokenError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class TokenSource extends Context.Tag("@strava-auth/core/TokenSource")<TokenSource, TokenSourceShape>() {}

/**
 * The default margin: refresh when 45 minutes are left. Inside Strava's hour, so the refresh mints a new
 * token, with most of the hour left for retries if Strava is down.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultMargin: Duration.Duration = Duration.minutes(45)

/**
 * Strava mints a new access token only when the current one has at most this long left.
 *
 * @since 0.1.0
 * @category constants
 */
export const oneHourRule: Duration.Duration = Duration.hours(1)

const MAX_BACKOFF = Duration.toMillis(Duration.minutes(5))

/**
 * @since 0.1.0
 * @category models
 */
export interface RefreshingOptions {
  /** Refresh when this little is left. Default 45 minutes. */
  readonly margin?: Duration.DurationInput | undefined
}

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

/**
 * The auto-refreshing source over a `TokenStore` and `StravaOAuth`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeRefreshing = (
  options: RefreshingOptions = {}
): Effect.Effect<TokenSourceShape, never, StravaOAuth | TokenStore> =>
  Effect.gen(function*() {
    const oauth = yield* StravaOAuth
    const store = yield* TokenStore
    const lock = yield* Effect.makeSemaphore(1)
    const marginMillis = Duration.toMillis(options.margin ?? defaultMargin)
    const hourMillis = Duration.toMillis(oneHourRule)

    let current: TokenSet | undefined
    // After "the same token came back", no refresh of that token before Strava's hour.
    let sameUntil: { readonly token: string; readonly at: number } | undefined
    // After a transient failure, no new attempt before `at`.
    let backoff: { readonly at: number; readonly failures: number } | undefined

    const due = (tokens: TokenSet, now: number): boolean => {
      if (!tokens.expiresWithin(Duration.millis(marginMillis), now)) return false
      if (sameUntil !== undefined && sameUntil.token === Redacted.value(tokens.accessToken) && now < sameUntil.at) {
        return false
      }
      return backoff === undefined || now >= backoff.at
    }

    const load = Effect.flatMap(store.get, (stored) =>
      Option.match(stored, {
        onNone: () => Effect.fail(new LoginRequired({ reason: "No Strava token is stored." })),
        onSome: (tokens) => {
          if (current === undefined || !current.sameRefreshToken(tokens)) backoff = undefined
          current = tokens
          return Effect.succeed(tokens)
        }
      }))

    const refresh = (tokens: TokenSet, now: number) =>
      // Strava rotates the refresh token as it answers: the request and the store's write run to their end
      // even if the caller is interrupted, and the set is durable before anyone sees its access token.
      shielded(Effect.tap(oauth.refresh(tokens), (fresh) => store.set(fresh))).pipe(
        Effect.tap((fresh) =>
          Effect.sync(() => {
            current = fresh
            backoff = undefined
            sameUntil = fresh.sameAccessToken(tokens)
              ? { token: Redacted.value(fresh.accessToken), at: fresh.expiresAt * 1000 - hourMillis }
              : undefined
          })
        ),
        Effect.tap((fresh) =>
          Effect.logDebug(fresh.sameAccessToken(tokens) ? "Strava returned the same token" : "token refreshed").pipe(
            Effect.annotateLogs({ expires_at: new Date(fresh.expiresAt * 1000).toISOString() })
          )
        ),
        Effect.map((fresh) => fresh.accessToken),
        Effect.catchAll((error) => {
          if (error._tag === "TokenStoreError" || !error.transient) return Effect.fail(error)
          const failures = (backoff?.failures ?? 0) + 1
          const wait = error._tag === "RateLimited"
            ? Math.max(0, error.retryAt - now)
            : Math.min(MAX_BACKOFF, 1000 * 2 ** (failures - 1))
          backoff = { at: now + wait, failures }
          return tokens.isExpired(now)
            ? Effect.fail(error)
            : Effect.as(
              Effect.logWarning("refresh failed; the current token is still valid").pipe(
                Effect.annotateLogs({ error: error._tag, retry_in_ms: wait })
              ),
              tokens.accessToken
            )
        })
      )

    const get: TokenSourceShape["get"] = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      if (current !== undefined && !due(current, now) && !current.isExpired(now)) return current.accessToken
      return yield* lock.withPermits(1)(Effect.gen(function*() {
        const tokens = yield* load // re-read: another fiber or process may have refreshed meanwhile
        const at = yield* Clock.currentTimeMillis
        if (!due(tokens, at)) {
          if (tokens.isExpired(at)) {
            return yield* new TokenUnavailable({ reason: "the token has expired and Strava is not answering." })
          }
          return tokens.accessToken
        }
        return yield* refresh(tokens, at)
      }))
    })

    const invalidate: TokenSourceShape["invalidate"] = (rejected) =>
      lock.withPermits(1)(Effect.gen(function*() {
        const tokens = yield* load
        if (Redacted.value(tokens.accessToken) !== Redacted.value(rejected)) return tokens.accessToken
        sameUntil = undefined
        return yield* refresh(tokens, yield* Clock.currentTimeMillis)
      }))

    return TokenSource.of({ get, invalidate })
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layerRefreshing = (
  options: RefreshingOptions = {}
): Layer.Layer<TokenSource, never, StravaOAuth | TokenStore> => Layer.effect(TokenSource, makeRefreshing(options))
