/**
 * The OAuth steps against Strava, as a service over `@effect/platform`'s `HttpClient`.
 *
 * - Parameters go in form bodies, never in URLs (Strava accepts both; the body keeps the secret out of
 *   logs and proxies). Tokens go only in `Authorization` headers.
 * - Tracer propagation headers are turned off: Strava is a third party.
 * - Each attempt has its own timeout; transient failures (network, timeout, 5xx, undecodable body) are
 *   retried a few times with jittered backoff. A 429 is not retried here: its window is minutes away, and
 *   the caller decides whether to wait.
 * - Every non-2xx answer becomes a `StravaError` through `StravaError.fromResponse`, which is given the
 *   secrets of the request (client secret, code or token sent) to scrub from the server's text.
 * - A body is read as a stream and abandoned past `StravaError.maxBodyBytes` (64 KB; a token answer is
 *   under 2 KB): `UnexpectedResponse` with reason `TooLarge`, so a broken or hostile server cannot make the
 *   process buffer hundreds of megabytes.
 *
 * @since 0.1.0
 */
import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"

import type { InvalidScope } from "./AuthorizationError.js"
import * as AuthorizeUrl from "./AuthorizeUrl.js"
import { StravaConfig } from "./StravaConfig.js"
import * as StravaError from "./StravaError.js"
import type { StravaScope } from "./StravaScope.js"
import * as Token from "./Token.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface AuthorizeOptions {
  readonly redirectUri: string
  readonly scope?: ReadonlyArray<string> | string | undefined
  readonly approvalPrompt?: AuthorizeUrl.ApprovalPrompt | undefined
  readonly state?: string | undefined
  readonly mobile?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface StravaOAuthShape {
  /** The authorize URL for this app (client id and base URL from the config). */
  readonly authorizeUrl: (options: AuthorizeOptions) => Effect.Effect<string, InvalidScope>
  /** Exchanges a redirect's code; `scopes` are the granted ones from the redirect (`Callback.parse`). */
  readonly exchangeCode: (callback: {
    readonly code: Redacted.Redacted<string> | string
    readonly scopes: ReadonlyArray<StravaScope>
  }) => Effect.Effect<Token.TokenSet, StravaError.StravaError>
  /**
   * Refreshes a token set. The result keeps the athlete and scopes; its refresh token is the one Strava
   * returned, which replaces the old one at once: store it before using the access token.
   */
  readonly refresh: (tokens: Token.TokenSet) => Effect.Effect<Token.TokenSet, StravaError.StravaError>
  /**
   * The legacy `POST /oauth/deauthorize`. From its retirement (2027-06-01, by `Clock`) it is never sent: it
   * fails at once with a 410 `UnexpectedResponse` that says to use `revoke`.
   */
  readonly deauthorize: (accessToken: Redacted.Redacted<string>) => Effect.Effect<void, StravaError.StravaError>
  /** `POST /oauth/revoke` (since 2026-06-01): either token revokes the whole grant. */
  readonly revoke: (
    token: Redacted.Redacted<string>,
    hint?: "access_token" | "refresh_token"
  ) => Effect.Effect<void, StravaError.StravaError>
  /**
   * The app's push subscriptions (`GET {api}/push_subscriptions`; Strava allows one per app). The client
   * secret goes as a parameter, as Strava requires, and nowhere else.
   */
  readonly listSubscriptions: Effect.Effect<ReadonlyArray<PushSubscription>, StravaError.StravaError>
  /**
   * `POST {api}/push_subscriptions`: Strava validates the callback at once (a GET with `hub.challenge` and
   * this verify token) before it answers.
   */
  readonly createSubscription: (options: {
    readonly callbackUrl: string
    readonly verifyToken: Redacted.Redacted<string>
  }) => Effect.Effect<number, StravaError.StravaError>
  /** `DELETE {api}/push_subscriptions/{id}`. */
  readonly deleteSubscription: (id: number) => Effect.Effect<void, StravaError.StravaError>
  /** `GET {api}/athlete`: checks that a token works, and who it belongs to. */
  readonly getAthlete: (
    accessToken: Redacted.Redacted<string>
  ) => Effect.Effect<Token.SummaryAthlete, StravaError.StravaError>
}

/**
 * When Strava retires `POST /oauth/deauthorize` (epoch milliseconds: 2027-06-01T00:00:00Z).
 *
 * @since 0.3.0
 * @category constants
 */
export const deauthorizeRetiredAt: number = Date.UTC(2027, 5, 1)

/**
 * A push subscription as Strava lists it.
 *
 * @since 0.3.0
 * @category models
 */
export const PushSubscription = Schema.Struct({
  id: Schema.Int,
  callback_url: Schema.String,
  application_id: Schema.optional(Schema.Number),
  created_at: Schema.optional(Schema.String),
  updated_at: Schema.optional(Schema.String)
})

/**
 * @since 0.3.0
 * @category models
 */
export type PushSubscription = typeof PushSubscription.Type

/**
 * @since 0.1.0
 * @category tags
 */
export class StravaOAuth extends Context.Tag("@strava-auth/core/StravaOAuth")<StravaOAuth, StravaOAuthShape>() {}

type Secrets = ReadonlyArray<Redacted.Redacted<string>>

const fromClientError = (secrets: Secrets) => (error: HttpClientError.HttpClientError): StravaError.StravaError => {
  if (error._tag === "ResponseError") {
    return new StravaError.UnexpectedResponse({
      status: error.response.status,
      reason: "Decode",
      detail: `the body could not be read (${error.reason})`
    })
  }
  return new StravaError.TransportError({
    reason: "Transport",
    detail: StravaError.scrub(`${error.reason}: ${error.description ?? "request failed"}`, secrets)
  })
}

interface Read {
  readonly size: number
  readonly chunks: Array<Uint8Array>
}

/**
 * Reads a body as text, at most `limit` bytes: a declared `Content-Length` over the limit fails before
 * reading, and the stream is abandoned (and the connection with it) as soon as the limit is passed.
 *
 * @since 0.2.0
 * @category reading
 */
export const readBody = (
  response: HttpClientResponse.HttpClientResponse,
  limit: number = StravaError.maxBodyBytes
): Effect.Effect<string, StravaError.UnexpectedResponse> => {
  const length = Headers.get(response.headers, "content-length")
  const declared = Option.match(length, { onNone: () => 0, onSome: Number })
  if (declared > limit) return Effect.fail(StravaError.tooLarge(response.status, limit))
  const unreadable = () =>
    new StravaError.UnexpectedResponse({
      status: response.status,
      reason: "Decode",
      detail: "the body could not be read"
    })
  // A declared length within the limit bounds the body (the HTTP parser reads no more than it): one read. Not
  // when it is encoded (gzip, br): a client that decodes it (fetch does) can get far more than the length.
  // Otherwise the stream is read with the cap checked at every chunk.
  const encoded = Option.match(Headers.get(response.headers, "content-encoding"), {
    onNone: () => false,
    onSome: (value) => value.trim().toLowerCase() !== "identity"
  })
  if (Option.isSome(length) && /^\d+$/.test(length.value.trim()) && !encoded) {
    return Effect.mapError(response.text, unreadable)
  }
  const stream = Stream.mapError(response.stream, unreadable)
  const initial: Read = { size: 0, chunks: [] }
  return Stream.runFoldEffect(stream, initial, (read, chunk) => {
    const size = read.size + chunk.length
    if (size > limit) return Effect.fail(StravaError.tooLarge(response.status, limit))
    read.chunks.push(chunk)
    return Effect.succeed({ size, chunks: read.chunks })
  }).pipe(Effect.map(({ chunks, size }) => {
    const bytes = new Uint8Array(size)
    let offset = 0
    for (const chunk of chunks) {
      bytes.set(chunk, offset)
      offset += chunk.length
    }
    return new TextDecoder().decode(bytes)
  }))
}

/**
 * Builds the service from a `StravaConfig` and an `HttpClient`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<StravaOAuthShape, never, StravaConfig | HttpClient.HttpClient> = Effect.gen(
  function*() {
    const config = yield* StravaConfig
    const client = (yield* HttpClient.HttpClient).pipe(
      HttpClient.withTracerPropagation(false),
      // A span records the full URL: no span for a request with the client secret in its query (Strava's
      // push subscription calls take it there).
      HttpClient.withTracerDisabledWhen((request) => request.urlParams.some(([name]) => name === "client_secret"))
    )
    const retry = Schedule.exponential(Duration.millis(500), 2).pipe(
      Schedule.jittered,
      Schedule.intersect(Schedule.recurs(config.retries))
    )

    // Sent with every request that carries the client secret: scrubbed from whatever the server says.
    const clientSecrets: Secrets = [
      config.clientSecret,
      StravaError.basicCredential(config.clientId, config.clientSecret)
    ]

    const send = <A>(
      endpoint: StravaError.Endpoint,
      request: HttpClientRequest.HttpClientRequest,
      sent: Redacted.Redacted<string>,
      decode: (response: HttpClientResponse.HttpClientResponse) => Effect.Effect<A, StravaError.StravaError>
    ): Effect.Effect<A, StravaError.StravaError> => {
      const secrets = [sent, ...clientSecrets]
      return client.execute(request).pipe(
        Effect.mapError(fromClientError(secrets)),
        Effect.flatMap((response) =>
          response.status >= 200 && response.status < 300
            ? decode(response)
            : Effect.flatMap(Effect.zip(readBody(response), Clock.currentTimeMillis), ([body, nowMillis]) =>
              Effect.fail(
                StravaError.fromResponse({
                  endpoint,
                  status: response.status,
                  headers: response.headers,
                  body,
                  nowMillis,
                  secrets
                })
              ))
        ),
        Effect.timeoutFail({
          duration: config.timeout,
          onTimeout: () =>
            new StravaError.TransportError({
              reason: "Timeout",
              detail: `no answer within ${Duration.format(config.timeout)}`
            })
        }),
        (attempt) =>
          config.retries <= 0 ? attempt : Effect.retry(attempt, {
            schedule: retry,
            while: (error) => error.transient && error._tag !== "RateLimited"
          })
      )
    }

    // Decoding is synchronous (no effectful schema in these), which keeps the per-call overhead low.
    const decodeJson = <A, I>(schema: Schema.Schema<A, I>) => {
      const decode = Schema.decodeUnknownEither(Schema.parseJson(schema))
      return (response: HttpClientResponse.HttpClientResponse) =>
        Effect.flatMap(readBody(response), (text) => {
          const decoded = decode(text)
          return decoded._tag === "Right"
            ? Effect.succeed(decoded.right)
            : Effect.fail(StravaError.fromParseError(response.status, decoded.left))
        })
    }

    const tokenRequest = (params: Record<string, string>) =>
      HttpClientRequest.post(`${config.baseUrl}/oauth/token`).pipe(
        HttpClientRequest.acceptJson,
        HttpClientRequest.bodyUrlParams({
          client_id: config.clientId,
          client_secret: Redacted.value(config.clientSecret),
          ...params
        })
      )

    const decodeExchange = decodeJson(Token.ExchangeResponse)
    const decodeRefresh = decodeJson(Token.RefreshResponse)
    const decodeAthlete = decodeJson(Token.SummaryAthlete)
    const ignoreBody = () => Effect.void
    const decodeSubscriptions = decodeJson(Schema.Array(PushSubscription))
    const decodeCreated = decodeJson(Schema.Struct({ id: Schema.Int }))
    const credentials = {
      client_id: config.clientId,
      client_secret: Redacted.value(config.clientSecret)
    }
    const subscriptions = `${config.apiUrl}/push_subscriptions`

    // A client span per OAuth step (`StravaOAuth.<step>`), for the app's tracer: no token or secret in it.
    return StravaOAuth.of({
      authorizeUrl: (options) => AuthorizeUrl.make({ ...options, clientId: config.clientId, baseUrl: config.baseUrl }),
      exchangeCode: ({ code, scopes }) => {
        const sent = Redacted.isRedacted(code) ? code : Redacted.make(code)
        return send(
          "token",
          tokenRequest({ code: Redacted.value(sent), grant_type: "authorization_code" }),
          sent,
          decodeExchange
        ).pipe(
          Effect.map((response) => Token.fromExchange(response, scopes)),
          span("exchangeCode")
        )
      },
      refresh: (tokens) =>
        send(
          "token",
          tokenRequest({ refresh_token: Redacted.value(tokens.refreshToken), grant_type: "refresh_token" }),
          tokens.refreshToken,
          decodeRefresh
        ).pipe(
          Effect.map((response) => Token.applyRefresh(tokens, response)),
          span("refresh")
        ),
      deauthorize: (accessToken) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          now >= deauthorizeRetiredAt
            ? Effect.fail(
              new StravaError.UnexpectedResponse({
                status: 410,
                reason: "Status",
                detail: "POST /oauth/deauthorize was retired by Strava on 2027-06-01 and is not called any more; " +
                  "revoke the grant with POST /oauth/revoke (StravaOAuth.revoke)"
              })
            )
            : send(
              "deauthorize",
              HttpClientRequest.post(`${config.baseUrl}/oauth/deauthorize`).pipe(
                HttpClientRequest.acceptJson,
                HttpClientRequest.bearerToken(accessToken)
              ),
              accessToken,
              ignoreBody
            )).pipe(span("deauthorize")),
      revoke: (token, hint) =>
        send(
          "revoke",
          HttpClientRequest.post(`${config.baseUrl}/oauth/revoke`).pipe(
            HttpClientRequest.acceptJson,
            HttpClientRequest.basicAuth(config.clientId, config.clientSecret),
            HttpClientRequest.bodyUrlParams({
              token: Redacted.value(token),
              ...(hint === undefined ? {} : { token_type_hint: hint })
            })
          ),
          token,
          ignoreBody
        ).pipe(span("revoke")),
      listSubscriptions: send(
        "subscriptions",
        HttpClientRequest.get(subscriptions).pipe(
          HttpClientRequest.acceptJson,
          HttpClientRequest.setUrlParams(credentials)
        ),
        config.clientSecret,
        decodeSubscriptions
      ).pipe(span("listSubscriptions")),
      createSubscription: ({ callbackUrl, verifyToken }) =>
        send(
          "subscriptions",
          HttpClientRequest.post(subscriptions).pipe(
            HttpClientRequest.acceptJson,
            HttpClientRequest.bodyUrlParams({
              ...credentials,
              callback_url: callbackUrl,
              verify_token: Redacted.value(verifyToken)
            })
          ),
          verifyToken,
          decodeCreated
        ).pipe(Effect.map((created) => created.id), span("createSubscription")),
      deleteSubscription: (id) =>
        send(
          "subscriptions",
          HttpClientRequest.del(`${subscriptions}/${id}`).pipe(
            HttpClientRequest.acceptJson,
            HttpClientRequest.setUrlParams(credentials)
          ),
          config.clientSecret,
          ignoreBody
        ).pipe(span("deleteSubscription")),
      getAthlete: (accessToken) =>
        send(
          "api",
          HttpClientRequest.get(`${config.apiUrl}/athlete`).pipe(
            HttpClientRequest.acceptJson,
            HttpClientRequest.bearerToken(accessToken)
          ),
          accessToken,
          decodeAthlete
        ).pipe(span("getAthlete"))
    })
  }
)

/** A client span per OAuth step, for the app's tracer; its attributes name the step, never a token or secret. */
const span = (name: string) => Effect.withSpan(`StravaOAuth.${name}`, { kind: "client" })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<StravaOAuth, never, StravaConfig | HttpClient.HttpClient> = Layer.effect(
  StravaOAuth,
  make
)
