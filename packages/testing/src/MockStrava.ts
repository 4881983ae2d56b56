/**
 * The simulator as an Effect service, and an in-process `HttpClient` that answers Strava's URLs with it.
 *
 * ```ts
 * const TestLayer = MockStrava.layerClient()   // MockStrava + HttpClient
 * it.effect("refreshes", () => Effect.gen(function*() {
 *   const mock = yield* MockStrava.MockStrava
 *   const redirect = yield* mock.approve(authorizeUrl)       // as the athlete pressing Authorize
 *   ...
 * }).pipe(Effect.provide(TestLayer)))
 * ```
 *
 * Time comes from `Clock`, so `TestClock.adjust("6 hours")` expires tokens in-process; `clockOffsetMillis`
 * makes Strava's clock differ from the caller's (Strava's time = the caller's `Clock` + the offset).
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

import type * as Fault from "./Fault.js"
import * as Simulator from "./Simulator.js"

/**
 * Base URLs the mock answers. In-process they default to Strava's real ones, so code under test needs no
 * configuration; the mock server uses its own loopback address.
 *
 * @since 0.1.0
 * @category models
 */
export interface Urls {
  readonly baseUrl: string
  readonly apiUrl: string
}

/**
 * @since 0.1.0
 * @category constants
 */
export const stravaUrls: Urls = {
  baseUrl: "https://www.strava.com",
  apiUrl: "https://www.strava.com/api/v3"
}

/**
 * How the athlete answers the authorize page.
 *
 * @since 0.1.0
 * @category models
 */
export interface Decision {
  /** Default: the first athlete. */
  readonly athleteId?: number | undefined
  /** Press Cancel instead of Authorize. */
  readonly deny?: boolean | undefined
  /** The boxes left ticked; default all requested. `read` is always granted, as on Strava. */
  readonly scopes?: ReadonlyArray<string> | undefined
}

/**
 * The authorize request was one Strava refuses (bad client id, redirect URI outside the callback domain,
 * unknown scope). `status` and `body` are what Strava would show.
 *
 * @since 0.1.0
 * @category errors
 */
export class AuthorizeRefused extends Error {
  readonly _tag = "AuthorizeRefused"
  constructor(readonly status: number, readonly body: string) {
    super(`Strava refuses this authorize request (${status}): ${body}`)
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface MockStravaShape {
  readonly simulator: Simulator.Simulator
  readonly urls: Urls
  /** Answers one request now. */
  readonly handle: (request: Simulator.Request) => Effect.Effect<Simulator.Outcome>
  /** The athlete opens `authorizeUrl` and decides; the redirect URL the browser would be sent to. */
  readonly approve: (authorizeUrl: string, decision?: Decision) => Effect.Effect<string, AuthorizeRefused>
  /**
   * The athlete revokes the app in their settings. When the app has a push subscription, Strava makes a
   * deauthorization event (the mock server delivers it).
   */
  readonly revokeAthlete: (athleteId?: number) => Effect.Effect<boolean>
  /**
   * Strava makes an event for the app's push subscription (the mock server delivers it); `undefined` when
   * the app has no subscription.
   *
   * @since 0.3.0
   */
  readonly sendEvent: (
    event: Simulator.PushEventInput,
    clientId?: string
  ) => Effect.Effect<Simulator.PushEvent | undefined>
  /**
   * Every delivery attempt the mock server made.
   *
   * @since 0.3.0
   */
  readonly deliveries: Effect.Effect<ReadonlyArray<Simulator.Delivery>>
  /**
   * Athletes with a live grant for the app (what the athlete cap counts).
   *
   * @since 0.3.0
   */
  readonly connectedAthletes: (clientId?: string) => Effect.Effect<number>
  /** Makes current access tokens expire in `inDuration` (default now), so the next refresh mints. */
  readonly expireAccessTokens: (inDuration?: Duration.DurationInput) => Effect.Effect<number>
  /** Activates or deactivates an application (403 Application/Status/Inactive). */
  readonly setActive: (active: boolean, clientId?: string) => Effect.Effect<void>
  readonly inject: (plan: Fault.Plan) => Effect.Effect<void>
  readonly clearFaults: Effect.Effect<void>
  readonly log: Effect.Effect<ReadonlyArray<Simulator.LogEntry>>
  readonly clearLog: Effect.Effect<void>
  /** The refresh token Strava would accept now for the athlete's grant. */
  readonly liveRefreshToken: (athleteId?: number) => Effect.Effect<string | undefined>
  readonly app: Simulator.App
  readonly athlete: Simulator.Athlete
}

/**
 * @since 0.1.0
 * @category tags
 */
export class MockStrava extends Context.Tag("@strava-auth/testing/MockStrava")<MockStrava, MockStravaShape>() {}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options extends Simulator.Options {
  readonly urls?: Urls | undefined
}

/**
 * Builds the service around a fresh simulator.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<MockStravaShape> =>
  Effect.sync(() => {
    const simulator = new Simulator.Simulator(options)
    const urls = options.urls ?? stravaUrls
    const app = simulator.apps.values().next().value ?? Simulator.defaultApp
    const athlete = simulator.athletes.values().next().value ?? Simulator.defaultAthlete
    // Strava's time: the caller's Clock, shifted by the configured skew.
    const offset = options.clockOffsetMillis ?? 0
    const now = Effect.map(Clock.currentTimeMillis, (t) => t + offset)
    return {
      simulator,
      urls,
      app,
      athlete,
      handle: (request) => Effect.map(now, (t) => simulator.handle(request, t)),
      approve: (authorizeUrl, decision = {}) =>
        Effect.flatMap(now, (t) => {
          const query = new URL(authorizeUrl, urls.baseUrl).searchParams
          const checked = simulator.checkAuthorize(query)
          if ("_tag" in checked) {
            return Effect.fail(new AuthorizeRefused(checked.response.status, checked.response.body))
          }
          const athleteId = decision.athleteId ?? athlete.id
          // At the athlete cap Strava shows its 403 instead of the page: no code, whatever the athlete meant.
          const limited = simulator.athleteLimitRefusal(checked, athleteId, t)
          if (limited !== undefined) return Effect.fail(new AuthorizeRefused(limited.status, limited.body))
          return Effect.succeed(simulator.decide(checked, {
            athleteId,
            approve: decision.deny !== true,
            ...(decision.scopes === undefined ? {} : { scopes: decision.scopes })
          }, t))
        }),
      revokeAthlete: (athleteId = athlete.id) =>
        Effect.map(now, (t) => simulator.revokeAthlete(athleteId, undefined, t)),
      sendEvent: (event, clientId) => Effect.map(now, (t) => simulator.sendEvent(event, t, clientId)),
      deliveries: Effect.sync(() => simulator.deliveries.slice()),
      connectedAthletes: (clientId) => Effect.sync(() => simulator.connectedAthletes(clientId)),
      expireAccessTokens: (inDuration = 0) =>
        Effect.map(now, (t) => simulator.expireAccessTokens(t, Duration.toMillis(inDuration))),
      setActive: (active, clientId = app.clientId) =>
        Effect.sync(() => {
          const existing = simulator.apps.get(clientId)
          if (existing !== undefined) simulator.setApp({ ...existing, active })
        }),
      inject: (plan) => Effect.sync(() => simulator.faults.add(plan)),
      clearFaults: Effect.sync(() => simulator.faults.clear()),
      log: Effect.sync(() => simulator.log.slice()),
      clearLog: Effect.sync(() => simulator.clearLog()),
      liveRefreshToken: (athleteId = athlete.id) => Effect.sync(() => simulator.liveRefreshToken(athleteId))
    }
  })

/**
 * The mock alone.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<MockStrava> => Layer.effect(MockStrava, make(options))

const bodyText = (request: HttpClientRequest.HttpClientRequest): string => {
  const body = request.body
  switch (body._tag) {
    case "Uint8Array":
      return new TextDecoder().decode(body.body)
    case "Raw":
      return typeof body.body === "string" ? body.body : ""
    default:
      return ""
  }
}

/**
 * Where a URL lands: on the API base, on the web base, or nowhere the mock answers.
 *
 * @since 0.1.0
 * @category routing
 */
export const locate = (urls: Urls, url: URL): { readonly api: boolean; readonly path: string } | undefined => {
  const href = `${url.origin}${url.pathname}`
  const strip = (base: string) => {
    const b = base.replace(/\/+$/, "")
    return href === b ? "/" : href.startsWith(`${b}/`) ? href.slice(b.length) : undefined
  }
  const api = strip(urls.apiUrl)
  if (api !== undefined) return { api: true, path: api }
  const web = strip(urls.baseUrl)
  if (web !== undefined) return { api: false, path: web }
  return undefined
}

/**
 * An `HttpClient` that answers the mock's URLs in-process. A hang waits until the caller's timeout
 * interrupts it; a reset fails as a transport error; anything outside the mock's URLs fails as a transport
 * error too, so a test can never reach the network through it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const httpClient = (mock: MockStravaShape): HttpClient.HttpClient =>
  HttpClient.make((request, url) =>
    Effect.gen(function*() {
      const located = locate(mock.urls, url)
      if (located === undefined) {
        return yield* new HttpClientError.RequestError({
          request,
          reason: "Transport",
          description: `the mock Strava does not answer ${url.origin}`
        })
      }
      const headers: Record<string, string> = {}
      for (const [k, v] of Object.entries(request.headers)) headers[k.toLowerCase()] = v
      const outcome = yield* mock.handle({
        method: request.method,
        path: located.path,
        api: located.api,
        query: url.searchParams,
        headers,
        body: bodyText(request)
      })
      switch (outcome._tag) {
        case "Hang":
          return yield* Effect.never
        case "Reset":
          return yield* new HttpClientError.RequestError({ request, reason: "Transport", description: "ECONNRESET" })
        case "Respond": {
          if (outcome.delayMillis > 0) yield* Effect.sleep(Duration.millis(outcome.delayMillis))
          const { body, headers, status } = outcome.response
          return HttpClientResponse.fromWeb(request, new Response(body === "" ? null : body, { status, headers }))
        }
      }
    })
  )

/**
 * The mock and an `HttpClient` answering with it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (options: Options = {}): Layer.Layer<MockStrava | HttpClient.HttpClient> =>
  Layer.effectContext(
    Effect.map(
      make(options),
      (mock) => Context.make(MockStrava, mock).pipe(Context.add(HttpClient.HttpClient, httpClient(mock)))
    )
  )
