/**
 * An `HttpClient` for Strava's API that authenticates itself.
 *
 * Relative URLs are resolved against `STRAVA_API_URL` (`client.get("/athlete")`). Each request gets
 * `Authorization: Bearer <token>` from the `TokenSource`; a 401 whose envelope says
 * `Athlete/access_token/invalid` (the token expired or was replaced early) makes it ask the source for a
 * token other than the refused one and retry once. Any other 401 (a missing scope, say) is returned as is.
 * The 401's body is read with the same 64 KB cap as the OAuth calls.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"

import { StravaConfig } from "./StravaConfig.js"
import * as StravaError from "./StravaError.js"
import * as StravaOAuth from "./StravaOAuth.js"
import type { TokenError } from "./TokenSource.js"
import { TokenSource } from "./TokenSource.js"

/**
 * @since 0.1.0
 * @category tags
 */
export class StravaClient extends Context.Tag("@strava-auth/core/StravaClient")<
  StravaClient,
  HttpClient.HttpClient.With<HttpClientError.HttpClientError | TokenError>
>() {}

/**
 * Whether a 401 body says the access token itself is no longer valid.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isInvalidAccessToken = (body: string): boolean =>
  Option.match(StravaError.parseFault(body), {
    onNone: () => false,
    onSome: (fault) =>
      fault.errors.some((item) =>
        item.resource.toLowerCase() === "athlete" && item.field === "access_token" && item.code === "invalid"
      )
  })

/**
 * The client for an API base URL (`https://www.strava.com/api/v3` unless told otherwise).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeWith = (options: { readonly apiUrl: string }): Effect.Effect<
  HttpClient.HttpClient.With<HttpClientError.HttpClientError | TokenError>,
  never,
  HttpClient.HttpClient | TokenSource
> =>
  Effect.gen(function*() {
    const apiUrl = options.apiUrl.replace(/\/+$/, "")
    const source = yield* TokenSource
    const client = (yield* HttpClient.HttpClient).pipe(
      HttpClient.withTracerPropagation(false),
      HttpClient.mapRequest((request) =>
        /^https?:\/\//.test(request.url) ? request : HttpClientRequest.prependUrl(request, apiUrl)
      )
    )
    const execute = (
      request: HttpClientRequest.HttpClientRequest
    ): Effect.Effect<HttpClientResponse.HttpClientResponse, HttpClientError.HttpClientError | TokenError> =>
      Effect.gen(function*() {
        const token = yield* source.get
        const response = yield* client.execute(HttpClientRequest.bearerToken(request, token))
        if (response.status !== 401) return response
        // Capped like every body read from Strava: a 401 is a few hundred bytes.
        const body = yield* StravaOAuth.readBody(response).pipe(
          Effect.mapError((error) =>
            new HttpClientError.ResponseError({ request, response, reason: "Decode", description: error.message })
          )
        )
        if (!isInvalidAccessToken(body)) {
          return HttpClientResponse.fromWeb(request, new Response(body, { status: 401, headers: response.headers }))
        }
        const fresh = yield* source.invalidate(token)
        return yield* client.execute(HttpClientRequest.bearerToken(request, fresh))
      })
    return HttpClient.makeWith(
      (request: Effect.Effect<HttpClientRequest.HttpClientRequest>) => Effect.flatMap(request, execute),
      Effect.succeed
    )
  })

/**
 * The client for the configured `STRAVA_API_URL`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<
  HttpClient.HttpClient.With<HttpClientError.HttpClientError | TokenError>,
  never,
  HttpClient.HttpClient | TokenSource | StravaConfig
> = Effect.flatMap(StravaConfig, (config) => makeWith({ apiUrl: config.apiUrl }))

/**
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<StravaClient, never, HttpClient.HttpClient | TokenSource | StravaConfig> = Layer
  .effect(StravaClient, make)

/**
 * For apps that need no client credentials (a daemon's token source): only the API base.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWith = (options: {
  readonly apiUrl: string
}): Layer.Layer<StravaClient, never, HttpClient.HttpClient | TokenSource> =>
  Layer.effect(StravaClient, makeWith(options))
