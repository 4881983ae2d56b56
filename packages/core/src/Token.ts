/**
 * Strava's token responses and the token set an app or the daemon keeps.
 *
 * - The exchange response carries a summary athlete; the refresh response does not. Athletes have changed
 *   shape over the years (`email` gone, `city` may be `null`), so only `id` is required.
 * - `expires_at` (epoch seconds) is the truth; `expires_in` has been missing in real refresh responses.
 * - Tokens are decoded straight into `Redacted`, so they never print.
 * - The token response carries no scope: the granted scopes come from the redirect, and a refresh keeps the
 *   athlete and scopes it had.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

import { StravaScope } from "./StravaScope.js"

const NullableString = Schema.optional(Schema.NullOr(Schema.String))

/**
 * A summary athlete (`resource_state: 2`), decoded tolerantly: only `id` is required and unknown fields
 * are dropped.
 *
 * @since 0.1.0
 * @category schemas
 */
export const SummaryAthlete = Schema.Struct({
  id: Schema.Number,
  username: NullableString,
  firstname: NullableString,
  lastname: NullableString,
  city: NullableString,
  state: NullableString,
  country: NullableString,
  profile: NullableString,
  profile_medium: NullableString
})

/**
 * @since 0.1.0
 * @category models
 */
export type SummaryAthlete = typeof SummaryAthlete.Type

/**
 * `POST /oauth/token` with `grant_type=refresh_token`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const RefreshResponse = Schema.Struct({
  token_type: Schema.optionalWith(Schema.String, { default: () => "Bearer" }),
  access_token: Schema.Redacted(Schema.NonEmptyString),
  refresh_token: Schema.Redacted(Schema.NonEmptyString),
  expires_at: Schema.Int,
  expires_in: Schema.optional(Schema.Number)
})

/**
 * @since 0.1.0
 * @category models
 */
export type RefreshResponse = typeof RefreshResponse.Type

/**
 * `POST /oauth/token` with `grant_type=authorization_code`: the refresh response plus the athlete.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ExchangeResponse = Schema.Struct({ ...RefreshResponse.fields, athlete: SummaryAthlete })

/**
 * @since 0.1.0
 * @category models
 */
export type ExchangeResponse = typeof ExchangeResponse.Type

/**
 * What a grant is: the two tokens, when the access token expires, what was granted and to whom.
 *
 * @since 0.1.0
 * @category models
 */
export class TokenSet extends Schema.Class<TokenSet>("@strava-auth/core/TokenSet")({
  tokenType: Schema.String,
  accessToken: Schema.Redacted(Schema.String),
  refreshToken: Schema.Redacted(Schema.String),
  /** Epoch seconds. */
  expiresAt: Schema.Int,
  scopes: Schema.Array(StravaScope),
  athlete: Schema.optional(SummaryAthlete)
}) {
  /**
   * Milliseconds left at `nowMillis` (negative once expired).
   *
   * @since 0.1.0
   */
  remainingMillis(nowMillis: number): number {
    return this.expiresAt * 1000 - nowMillis
  }

  /**
   * Whether the access token is expired at `nowMillis`.
   *
   * @since 0.1.0
   */
  isExpired(nowMillis: number): boolean {
    return this.remainingMillis(nowMillis) <= 0
  }

  /**
   * Whether the access token expires within `duration` of `nowMillis` (expired counts).
   *
   * @since 0.1.0
   */
  expiresWithin(duration: Duration.DurationInput, nowMillis: number): boolean {
    return this.remainingMillis(nowMillis) <= Duration.toMillis(duration)
  }

  /**
   * Whether both sets hold the same access token and expiry (Strava's "one-hour rule" answer).
   *
   * @since 0.1.0
   */
  sameAccessToken(that: TokenSet): boolean {
    return this.expiresAt === that.expiresAt && Redacted.value(this.accessToken) === Redacted.value(that.accessToken)
  }

  /**
   * Whether both sets hold the same refresh token.
   *
   * @since 0.1.0
   */
  sameRefreshToken(that: TokenSet): boolean {
    return Redacted.value(this.refreshToken) === Redacted.value(that.refreshToken)
  }
}

/**
 * The token set of a fresh login: the exchange response plus the scopes the redirect granted.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromExchange = (
  response: ExchangeResponse,
  scopes: ReadonlyArray<StravaScope>
): TokenSet =>
  // The response was decoded by its schema already: no second validation.
  new TokenSet({
    tokenType: response.token_type,
    accessToken: response.access_token,
    refreshToken: response.refresh_token,
    expiresAt: response.expires_at,
    scopes,
    athlete: response.athlete
  }, true)

/**
 * The token set after a refresh: new tokens and expiry, the athlete and scopes from before. The refresh
 * token in the response always wins: Strava invalidates the old one as soon as it returns a new one.
 *
 * @since 0.1.0
 * @category constructors
 */
export const applyRefresh = (previous: TokenSet, response: RefreshResponse): TokenSet =>
  new TokenSet({
    tokenType: response.token_type,
    accessToken: response.access_token,
    refreshToken: response.refresh_token,
    expiresAt: response.expires_at,
    scopes: previous.scopes,
    ...(previous.athlete === undefined ? {} : { athlete: previous.athlete })
  }, true)
