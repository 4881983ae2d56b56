/**
 * Per-athlete access for a web app with many athletes: a valid token or an authenticated Strava client for
 * any connected athlete, and disconnecting one. Everything goes through the one refresh engine
 * (`@strava-auth/core/RefreshEngine`) over the app's `GrantStore` (on SQL: `SqlGrantStore`):
 *
 * - lazy: a token is refreshed only when a request needs it and it is within the margin;
 * - single flight in the process (the engine joins a refresh in flight) and exclusive across replicas (the
 *   store's lock: the row lock on SQL); a replica that finds the grant refreshed by another uses that one;
 * - each call first re-reads the athlete's row (one primary-key read), so a grant removed or replaced on
 *   another replica (a deauthorization, a new connect) is seen at once.
 *
 * @since 0.3.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as GrantStore from "@strava-auth/core/GrantStore"
import * as RefreshEngine from "@strava-auth/core/RefreshEngine"
import * as StravaClient from "@strava-auth/core/StravaClient"
import { StravaConfig } from "@strava-auth/core/StravaConfig"
import * as StravaError from "@strava-auth/core/StravaError"
import { StravaOAuth } from "@strava-auth/core/StravaOAuth"
import type { TokenSet } from "@strava-auth/core/Token"
import * as TokenSource from "@strava-auth/core/TokenSource"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

import { isAthleteId } from "./SqlGrantStore.js"

/**
 * The athlete id is not a Strava athlete id.
 *
 * @since 0.3.0
 * @category errors
 */
export class InvalidAthleteId extends Schema.TaggedError<InvalidAthleteId>()("InvalidAthleteId", {
  input: Schema.String
}) {
  /** @since 0.3.0 */
  override get message(): string {
    return `"${this.input.slice(0, 40)}" is not a Strava athlete id (a positive whole number).`
  }
}

/**
 * @since 0.3.0
 * @category models
 */
export interface AthletesShape {
  /** A valid access token for the athlete (refreshed first when within the margin). */
  readonly tokenFor: (
    athleteId: string | number
  ) => Effect.Effect<Redacted.Redacted<string>, TokenSource.TokenError | InvalidAthleteId>
  /** The athlete's stored set, valid (scopes and the athlete summary with it). */
  readonly tokensFor: (
    athleteId: string | number
  ) => Effect.Effect<TokenSet, TokenSource.TokenError | InvalidAthleteId>
  /**
   * An HttpClient for Strava's API as the athlete: Bearer from the engine, and on a 401 that says the token is
   * no longer valid, one refresh and one retry (core's `StravaClient`). A 429 fails as `RateLimited`.
   */
  readonly clientFor: (
    athleteId: string | number
  ) => Effect.Effect<
    HttpClient.HttpClient.With<HttpClientError.HttpClientError | TokenSource.TokenError>,
    InvalidAthleteId
  >
  /**
   * Revokes the athlete's grant at Strava, then removes it. The grant is removed only once Strava confirmed
   * the revoke or said the grant is gone (a 200 for an unknown token, or the refresh token refused as
   * invalid): on any other failure it is kept, so the app can try again and is never left unable to revoke.
   * Not connected: nothing to do.
   */
  readonly disconnect: (
    athleteId: string | number
  ) => Effect.Effect<
    "revoked" | "not connected",
    StravaError.StravaError | GrantStore.GrantStoreError | InvalidAthleteId
  >
  /** The engine, for status pages (`state(athleteId)`). */
  readonly engine: RefreshEngine.Engine
}

/**
 * @since 0.3.0
 * @category tags
 */
export class Athletes extends Context.Tag("@strava-auth/server/Athletes")<Athletes, AthletesShape>() {}

/**
 * The key of an athlete's grant: the id as digits.
 *
 * @since 0.3.0
 * @category constructors
 */
export const keyOf = (athleteId: string | number): Effect.Effect<string, InvalidAthleteId> => {
  const text = String(athleteId)
  return isAthleteId(text) ? Effect.succeed(text) : Effect.fail(new InvalidAthleteId({ input: text }))
}

/**
 * @since 0.3.0
 * @category models
 */
export interface Options {
  /** Refresh when this little is left. Default 45 minutes. */
  readonly margin?: Duration.DurationInput | undefined
}

/**
 * @since 0.3.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<AthletesShape, never, GrantStore.GrantStore | StravaOAuth | StravaConfig | HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const store = yield* GrantStore.GrantStore
    const oauth = yield* StravaOAuth
    const config = yield* StravaConfig
    const engine = yield* RefreshEngine.make({ margin: options.margin, execute: yield* RefreshEngine.inProcess })
    const context = yield* Effect.context<HttpClient.HttpClient>()

    // Re-reads the row first: a removal or a reconnect on another replica is seen at once.
    const tokensOf = (key: string) =>
      Effect.zipRight(engine.sync(key), engine.token(key)).pipe(
        Effect.withSpan("Athletes.tokenFor", { attributes: { athlete_id: key } })
      )
    const tokensFor = (athleteId: string | number) => Effect.flatMap(keyOf(athleteId), tokensOf)

    const sourceFor = (key: string): TokenSource.TokenSourceShape => ({
      get: Effect.map(tokensOf(key), (tokens) => tokens.accessToken),
      invalidate: (rejected) => Effect.map(engine.invalidate(key, rejected), (tokens) => tokens.accessToken)
    })

    return {
      engine,
      tokensFor,
      tokenFor: (athleteId) => Effect.map(tokensFor(athleteId), (tokens) => tokens.accessToken),
      clientFor: (athleteId) =>
        Effect.flatMap(keyOf(athleteId), (key) =>
          StravaClient.makeWith({ apiUrl: config.apiUrl }).pipe(
            Effect.provide(context),
            Effect.provideService(TokenSource.TokenSource, sourceFor(key)),
            // A 429 (Strava's, or the app's budget answering for a spent window) fails as `RateLimited`, with
            // when the window resets: Strava sends no Retry-After.
            Effect.map(HttpClient.transformResponse(Effect.flatMap((response) =>
              response.status === 429
                ? Effect.flatMap(Clock.currentTimeMillis, (nowMillis) =>
                  Effect.fail(
                    StravaError.fromResponse({
                      endpoint: "api",
                      status: 429,
                      headers: response.headers,
                      body: "",
                      nowMillis
                    }) as StravaError.RateLimited
                  ))
                : Effect.succeed(response)
            )))
          )),
      disconnect: (athleteId) =>
        Effect.flatMap(keyOf(athleteId), (key) =>
          store.withLock(
            key,
            Effect.gen(function*() {
              const stored = yield* store.get(key)
              if (Option.isNone(stored)) return "not connected" as const
              // Either token revokes the whole grant; the refresh token is valid whatever the access token's age.
              yield* oauth.revoke(stored.value.refreshToken, "refresh_token").pipe(
                // Strava says the grant is gone already (the athlete revoked it): nothing left to revoke.
                Effect.catchTag("InvalidGrant", () => Effect.void)
              )
              yield* store.remove(key)
              return "revoked" as const
            })
          ).pipe(
            Effect.tap(() => engine.sync(key)),
            Effect.withSpan("Athletes.disconnect", { attributes: { athlete_id: key } })
          ))
    } satisfies AthletesShape
  })

/**
 * @since 0.3.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<Athletes, never, GrantStore.GrantStore | StravaOAuth | StravaConfig | HttpClient.HttpClient> =>
  Layer.effect(Athletes, make(options))
