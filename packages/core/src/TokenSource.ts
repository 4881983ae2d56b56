/**
 * Where an app gets a valid access token from.
 *
 * `TokenSource` is the interface the authenticated client uses. This module provides the auto-refreshing
 * source for apps that own their grant (`layerRefreshing`), a thin face on the one refresh engine
 * (`RefreshEngine`) over a `GrantStore`: single flight, re-read under the grant's lock, stored before
 * handed out, shielded from interruption, a failed write kept and retried, Strava's one-hour rule learned,
 * transient failures served from the still-valid token with a backoff. The daemon package provides sources
 * that ask the daemon's socket or read its token file, which never refresh by themselves, so an app can never
 * race the daemon over a rotated refresh token.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"

import type { GrantStore } from "./GrantStore.js"
import { defaultKey } from "./GrantStore.js"
import * as RefreshEngine from "./RefreshEngine.js"
import type { StravaOAuth } from "./StravaOAuth.js"

export {
  /**
   * @since 0.1.0
   * @category constants
   */
  defaultMargin,
  /**
   * @since 0.1.0
   * @category errors
   */
  LoginRequired,
  /**
   * @since 0.1.0
   * @category constants
   */
  oneHourRule,
  /**
   * @since 0.1.0
   * @category combinators
   */
  shielded,
  /**
   * @since 0.1.0
   * @category errors
   */
  TokenUnavailable
} from "./RefreshEngine.js"

/**
 * @since 0.1.0
 * @category errors
 */
export type TokenError = RefreshEngine.RefreshError | RefreshEngine.TokenUnavailable

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
 * @since 0.1.0
 * @category models
 */
export interface RefreshingOptions {
  /** Refresh when this little is left. Default 45 minutes. */
  readonly margin?: Duration.DurationInput | undefined
  /** The grant's key in the store. Default `"default"`. */
  readonly key?: string | undefined
}

/**
 * The source of one grant of an engine (an app with many athletes makes one per athlete, or calls the
 * engine's `token` directly).
 *
 * @since 0.2.0
 * @category constructors
 */
export const fromEngine = (engine: RefreshEngine.Engine, key: string): TokenSourceShape => ({
  get: Effect.map(engine.token(key), (tokens) => tokens.accessToken),
  invalidate: (rejected) => Effect.map(engine.invalidate(key, rejected), (tokens) => tokens.accessToken)
})

/**
 * The auto-refreshing source over a `GrantStore` and `StravaOAuth`, refreshing in this process.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeRefreshing = (
  options: RefreshingOptions = {}
): Effect.Effect<TokenSourceShape, never, StravaOAuth | GrantStore> =>
  Effect.gen(function*() {
    const engine = yield* RefreshEngine.make({ margin: options.margin, execute: yield* RefreshEngine.inProcess })
    return TokenSource.of(fromEngine(engine, options.key ?? defaultKey))
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layerRefreshing = (
  options: RefreshingOptions = {}
): Layer.Layer<TokenSource, never, StravaOAuth | GrantStore> => Layer.effect(TokenSource, makeRefreshing(options))
