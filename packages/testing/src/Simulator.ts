/**
 * An independent model of Strava's OAuth and the slice of its API that checks a token.
 *
 * It is written from Strava's wire behaviour (see `docs/STRAVA.md`), never from `@strava-auth/core`, so
 * that code tested against it is tested against Strava and not against its own assumptions.
 *
 * Invariants this model keeps, as Strava does:
 * - A code is single-use and short-lived; a second exchange is a 400.
 * - One grant per (application, athlete). Minting a new access token rotates the refresh token, and the old
 *   refresh token dies at once. A refresh while the current access token has more than the threshold (one
 *   hour) left returns the same access token, expiry and refresh token.
 * - Old access tokens keep working until they expire; deauthorize and revoke kill every token of the grant.
 * - `/oauth/token` answers carry no rate-limit headers; API and deauthorize answers do, and count.
 * - With an athlete cap (the 2026 program), an athlete without a live grant is refused on the authorize page
 *   once the app's live grants reach the cap; athletes already connected can still authorize again.
 * - One push subscription per application. Creating it needs the callback to have answered Strava's
 *   challenge, which only the mock server can check (over HTTP): the simulator keeps the subscription and
 *   makes the events, the server delivers them.
 *
 * Time is a parameter (`nowMillis`), so the Effect wrapper can take it from `Clock` and `TestClock` drives it.
 *
 * @since 0.1.0
 */
import * as Encoding from "effect/Encoding"

import * as Fault from "./Fault.js"
import type { Response } from "./StravaResponse.js"
import {
  athleteLimitPage,
  authorizationError,
  badRequest,
  envelope,
  json,
  outagePage,
  rateLimited
} from "./StravaResponse.js"

/**
 * A registered application.
 *
 * @since 0.1.0
 * @category models
 */
export interface App {
  readonly clientId: string
  readonly clientSecret: string
  readonly name: string
  /** The host the redirect URI must be on; `localhost` and `127.0.0.1` are always allowed. */
  readonly callbackDomain: string
  readonly active: boolean
}

/**
 * A summary athlete, as `/oauth/token` returns it on exchange.
 *
 * @since 0.1.0
 * @category models
 */
export interface Athlete {
  readonly id: number
  readonly username: string | null
  readonly firstname: string
  readonly lastname: string
  readonly city: string | null
  readonly state: string | null
  readonly country: string | null
}

/**
 * Rate limits per application: `fifteenMinutes` and `daily`, overall and for read (non-upload) endpoints.
 *
 * @since 0.1.0
 * @category models
 */
export interface RateLimits {
  readonly overall: { readonly fifteenMinutes: number; readonly daily: number }
  readonly read: { readonly fifteenMinutes: number; readonly daily: number }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly apps?: ReadonlyArray<App> | undefined
  readonly athletes?: ReadonlyArray<Athlete> | undefined
  /** Default 6 hours. */
  readonly accessTokenLifetimeMillis?: number | undefined
  /** The one-hour rule's hour. Default 1 hour. */
  readonly refreshThresholdMillis?: number | undefined
  /** Default 10 minutes. */
  readonly codeLifetimeMillis?: number | undefined
  /** Default Strava's: 200/2,000 overall and 100/1,000 read. */
  readonly rateLimits?: RateLimits | undefined
  /**
   * Strava's clock minus the caller's, in milliseconds: Strava's time is the caller's `Clock` plus this, so
   * `-20 * 60_000` is a caller whose clock runs 20 minutes fast. Default 0. The simulator itself takes time as
   * a parameter; `MockStrava` (and so the mock server) applies the offset to the time it passes.
   */
  readonly clockOffsetMillis?: number | undefined
  /**
   * When `POST /oauth/deauthorize` is retired (epoch ms): from then on it answers 404 as an unknown path, as
   * Strava announced. Default 2027-06-01T00:00:00Z.
   */
  readonly deauthorizeRetiredAtMillis?: number | undefined
  /**
   * The 2026 program's cap on connected athletes per application (Standard apps: 1 in single-player mode,
   * up to 10). Once the athletes with a live (not revoked) grant reach it, an athlete without one is refused
   * on the authorize page with a 403, before any code. Default: no cap.
   *
   * @since 0.3.0
   */
  readonly athleteCap?: number | undefined
}

/**
 * `count` athletes with consecutive ids from `firstId` (default 1001, the default athlete's), for a mock
 * with many athletes: `new Simulator({ athletes: makeAthletes(1000) })`.
 *
 * @since 0.3.0
 * @category constructors
 */
export const makeAthletes = (count: number, firstId: number = defaultAthlete.id): ReadonlyArray<Athlete> =>
  Array.from({ length: count }, (_, i) => {
    const id = firstId + i
    return { ...defaultAthlete, id, username: `mock_athlete_${id}`, firstname: "Athlete", lastname: String(id) }
  })

/**
 * The defaults: one app (client id `12345`) and one athlete (id `1001`).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultApp: App = {
  clientId: "12345",
  clientSecret: "mock-client-secret-0123456789abcdef",
  name: "strava-auth mock app",
  callbackDomain: "localhost",
  active: true
}

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultAthlete: Athlete = {
  id: 1001,
  username: "mock_athlete",
  firstname: "Marianne",
  lastname: "Mock",
  city: "Utrecht",
  state: null,
  country: "Netherlands"
}

/**
 * @since 0.1.0
 * @category constants
 */
export const stravaRateLimits: RateLimits = {
  overall: { fifteenMinutes: 200, daily: 2000 },
  read: { fifteenMinutes: 100, daily: 1000 }
}

/**
 * The scopes Strava knows.
 *
 * @since 0.1.0
 * @category constants
 */
export const scopes = [
  "read",
  "read_all",
  "profile:read_all",
  "profile:write",
  "activity:read",
  "activity:read_all",
  "activity:write"
] as const

/**
 * Which endpoint a request is for.
 *
 * @since 0.1.0
 * @category models
 */
export type Endpoint =
  | "authorize"
  | "token"
  | "deauthorize"
  | "revoke"
  | "athlete"
  | "activities"
  | "push_subscriptions"
  | "unknown"

/**
 * A request as the simulator sees it. `headers` keys are lower case.
 *
 * @since 0.1.0
 * @category models
 */
export interface Request {
  readonly method: string
  /** The path relative to the web base (`/oauth/token`) or, with `api: true`, to the API base (`/athlete`). */
  readonly path: string
  readonly api: boolean
  readonly query: URLSearchParams
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
  /**
   * Creating a push subscription: whether the callback answered Strava's challenge (see
   * `callbackToValidate`). The mock server checks it over HTTP before it hands the request over; without it
   * (in-process, where no callback can be called) creation fails as for a callback that does not answer.
   *
   * @since 0.3.0
   */
  readonly callbackValidated?: boolean | undefined
}

/**
 * What to do with a request: answer it, or misbehave as a fault says.
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome =
  | { readonly _tag: "Respond"; readonly response: Response; readonly delayMillis: number }
  | { readonly _tag: "Hang" }
  | { readonly _tag: "Reset" }

/**
 * One line of the request log.
 *
 * @since 0.1.0
 * @category models
 */
export interface LogEntry {
  readonly at: number
  readonly endpoint: Endpoint
  readonly method: string
  readonly clientId?: string | undefined
  readonly grantType?: string | undefined
  /** The refresh token presented on a refresh, so a test can check it was the live one. */
  readonly refreshToken?: string | undefined
  /** The HTTP status answered, or `hang`/`reset`. */
  readonly status: number | "hang" | "reset"
  /** A short description: `exchanged`, `refreshed`, `same token`, `invalid refresh token`, `fault 503`, ... */
  readonly outcome: string
  readonly fault?: string | undefined
}

/**
 * An application's push subscription (Strava allows one per application).
 *
 * @since 0.3.0
 * @category models
 */
export interface PushSubscription {
  readonly id: number
  readonly clientId: string
  readonly callbackUrl: string
  readonly verifyToken: string
  readonly createdAt: number
  readonly updatedAt: number
}

/**
 * An event as Strava POSTs it to a subscription's callback, field for field (JSON, snake case).
 * A deauthorization is `object_type: "athlete"`, `aspect_type: "update"`, `updates: {authorized: "false"}`.
 *
 * @since 0.3.0
 * @category models
 */
export interface PushEvent {
  readonly aspect_type: "create" | "update" | "delete"
  /** Epoch seconds. */
  readonly event_time: number
  readonly object_id: number
  readonly object_type: "activity" | "athlete"
  readonly owner_id: number
  readonly subscription_id: number
  readonly updates: Readonly<Record<string, unknown>>
}

/**
 * What a test gives to send an event; the simulator adds `subscription_id` and, unless given, `event_time`
 * and `updates` (`{}`).
 *
 * @since 0.3.0
 * @category models
 */
export interface PushEventInput {
  readonly aspect_type: PushEvent["aspect_type"]
  readonly object_id: number
  readonly object_type: PushEvent["object_type"]
  readonly owner_id: number
  readonly updates?: Readonly<Record<string, unknown>> | undefined
  readonly event_time?: number | undefined
}

/**
 * One attempt to deliver an event to a callback, as the mock server made it.
 *
 * @since 0.3.0
 * @category models
 */
export interface Delivery {
  /** When the attempt started (Strava's time, milliseconds). */
  readonly at: number
  readonly event: PushEvent
  readonly callbackUrl: string
  /** 1, 2 or 3: Strava makes three attempts in all. */
  readonly attempt: number
  /** 1, or 2 for the second copy of an event when the server delivers duplicates. */
  readonly copy: number
  /** The callback's HTTP status; `timeout` when it did not answer in time; `error` when it could not be reached. */
  readonly status: number | "timeout" | "error"
  /**
   * Whether this is the server's last attempt for the event: this copy answered 200 or was tried three
   * times, and no copy is left to deliver. A test waits for it before asserting what was delivered.
   */
  readonly last: boolean
}

interface AccessToken {
  readonly token: string
  readonly grant: Grant
  expiresAt: number
}

interface Grant {
  readonly app: App
  readonly athlete: Athlete
  scopes: ReadonlyArray<string>
  refreshToken: string
  current: AccessToken | undefined
  revoked: boolean
}

interface Code {
  readonly code: string
  readonly app: App
  readonly athlete: Athlete
  readonly scopes: ReadonlyArray<string>
  readonly expiresAt: number
  used: boolean
}

/**
 * The parameters of an authorize request, checked.
 *
 * @since 0.1.0
 * @category models
 */
export interface AuthorizeRequest {
  readonly app: App
  readonly redirectUri: string
  readonly scopes: ReadonlyArray<string>
  readonly state: string
  readonly approvalPrompt: "auto" | "force"
}

/**
 * An authorize request Strava would refuse, with the response it would give.
 *
 * @since 0.1.0
 * @category models
 */
export interface AuthorizeRefusal {
  readonly _tag: "AuthorizeRefusal"
  readonly response: Response
}

const MINUTE = 60_000
const HOUR = 60 * MINUTE
const FIFTEEN_MINUTES = 15 * MINUTE
const DAY = 24 * HOUR

const randomHex = (bytes: number): string =>
  Encoding.encodeHex(globalThis.crypto.getRandomValues(new Uint8Array(bytes)))

const parseForm = (request: Request): URLSearchParams => {
  const params = new URLSearchParams(request.query)
  const type = request.headers["content-type"] ?? ""
  if (request.body.length > 0 && (type === "" || type.startsWith("application/x-www-form-urlencoded"))) {
    for (const [k, v] of new URLSearchParams(request.body)) params.set(k, v)
  } else if (request.body.length > 0 && type.startsWith("application/json")) {
    try {
      const parsed: unknown = JSON.parse(request.body)
      if (typeof parsed === "object" && parsed !== null) {
        for (const [k, v] of Object.entries(parsed)) params.set(k, String(v))
      }
    } catch {
      // Strava ignores a body it cannot read; the request then lacks its parameters.
    }
  }
  return params
}

const bearer = (request: Request): string | undefined => {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers["authorization"] ?? "")
  return match?.[1]
}

const basic = (request: Request): { id: string; secret: string } | undefined => {
  const match = /^Basic\s+(\S+)\s*$/i.exec(request.headers["authorization"] ?? "")
  if (match === undefined || match === null) return undefined
  const decoded = Encoding.decodeBase64String(match[1]!)
  if (decoded._tag === "Left") return undefined
  const colon = decoded.right.indexOf(":")
  if (colon < 0) return undefined
  try {
    return {
      id: decodeURIComponent(decoded.right.slice(0, colon)),
      secret: decodeURIComponent(decoded.right.slice(colon + 1))
    }
  } catch {
    return undefined // a malformed %-escape
  }
}

/**
 * Which endpoint a request is for.
 *
 * @since 0.1.0
 * @category routing
 */
export const endpointOf = (request: Pick<Request, "path" | "api">): Endpoint => {
  const path = request.path.replace(/\/+$/, "") || "/"
  if (request.api) {
    if (path === "/oauth/token") return "token"
    if (path === "/athlete") return "athlete"
    if (path === "/athlete/activities") return "activities"
    if (path === "/push_subscriptions" || /^\/push_subscriptions\/[^/]+$/.test(path)) return "push_subscriptions"
    return "unknown"
  }
  if (path === "/oauth/authorize" || path === "/oauth/mobile/authorize") return "authorize"
  if (path === "/oauth/token") return "token"
  if (path === "/oauth/deauthorize") return "deauthorize"
  if (path === "/oauth/revoke") return "revoke"
  return "unknown"
}

/**
 * The simulator's state and rules. Every method is synchronous and takes the time as an argument; the
 * `MockStrava` service wraps it in Effect with `Clock`.
 *
 * @since 0.1.0
 * @category models
 */
export class Simulator {
  readonly apps = new Map<string, App>()
  readonly athletes = new Map<number, Athlete>()
  readonly accessTokenLifetimeMillis: number
  readonly refreshThresholdMillis: number
  readonly codeLifetimeMillis: number
  readonly deauthorizeRetiredAtMillis: number
  readonly rateLimits: RateLimits
  /** @since 0.3.0 */
  readonly athleteCap: number | undefined
  readonly faults: Fault.Faults = new Fault.Faults()
  private readonly grants = new Map<string, Grant>()
  private readonly accessTokens = new Map<string, AccessToken>()
  private readonly refreshTokens = new Map<string, Grant>()
  private readonly codes = new Map<string, Code>()
  private readonly usage = new Map<string, number>()
  private readonly entries: Array<LogEntry> = []
  private readonly issuedRefreshTokens: Array<string> = []
  private readonly subscriptions = new Map<string, PushSubscription>()
  private nextSubscriptionId = 1
  private readonly eventLog: Array<PushEvent> = []
  private readonly deliveryLog: Array<Delivery> = []
  private readonly listeners = new Set<(event: PushEvent, subscription: PushSubscription) => void>()

  constructor(options: Options = {}) {
    for (const app of options.apps ?? [defaultApp]) this.apps.set(app.clientId, app)
    for (const athlete of options.athletes ?? [defaultAthlete]) this.athletes.set(athlete.id, athlete)
    this.accessTokenLifetimeMillis = options.accessTokenLifetimeMillis ?? 6 * HOUR
    this.refreshThresholdMillis = options.refreshThresholdMillis ?? HOUR
    this.codeLifetimeMillis = options.codeLifetimeMillis ?? 10 * MINUTE
    this.deauthorizeRetiredAtMillis = options.deauthorizeRetiredAtMillis ?? Date.UTC(2027, 5, 1)
    this.rateLimits = options.rateLimits ?? stravaRateLimits
    this.athleteCap = options.athleteCap
  }

  // ---------------------------------------------------------------------------------------------------------
  // Driving the simulator

  /** The request log, oldest first. */
  get log(): ReadonlyArray<LogEntry> {
    return this.entries
  }

  clearLog(): void {
    this.entries.length = 0
  }

  /** Replaces (or adds) an application, e.g. to make it inactive. */
  setApp(app: App): void {
    this.apps.set(app.clientId, app)
    for (const grant of this.grants.values()) {
      if (grant.app.clientId === app.clientId) (grant as { app: App }).app = app
    }
  }

  /** The live refresh token of an athlete's grant, if the grant exists and is not revoked. */
  liveRefreshToken(athleteId: number, clientId?: string): string | undefined {
    const grant = this.grants.get(this.grantKey(clientId ?? this.firstClientId(), athleteId))
    return grant === undefined || grant.revoked ? undefined : grant.refreshToken
  }

  /** Every access and refresh token ever issued, for tests that scan output for leaked secrets. */
  issuedTokens(): ReadonlyArray<string> {
    return [...this.accessTokens.keys(), ...this.issuedRefreshTokens]
  }

  /** Whether a refresh token would be accepted now. */
  isLiveRefreshToken(token: string): boolean {
    const grant = this.refreshTokens.get(token)
    return grant !== undefined && !grant.revoked && grant.refreshToken === token
  }

  /**
   * The athlete revokes the app in their Strava settings: every token of the grant stops working and, when
   * the app has a push subscription, Strava sends it a deauthorization event (`updates: {authorized:
   * "false"}`) made at `nowMillis`. `MockStrava` passes its `Clock`; a direct caller without one gets the
   * machine's time.
   *
   * Only this athlete-initiated revocation makes an event: STRAVA.md calls the event "the only notice an app
   * gets that an athlete revoked it on strava.com", so `/oauth/deauthorize` and `/oauth/revoke`, called by
   * the app itself, make none (the app already knows).
   */
  revokeAthlete(athleteId: number, clientId?: string, nowMillis: number = Date.now()): boolean {
    const grant = this.grants.get(this.grantKey(clientId ?? this.firstClientId(), athleteId))
    if (grant === undefined || grant.revoked) return false
    grant.revoked = true
    this.sendEvent(
      {
        aspect_type: "update",
        object_id: athleteId,
        object_type: "athlete",
        owner_id: athleteId,
        updates: { authorized: "false" }
      },
      nowMillis,
      grant.app.clientId
    )
    return true
  }

  /**
   * The number of athletes with a live (not revoked) grant for an application (default: the first): what
   * the 2026 program's cap counts. A grant exists once a code has been exchanged; a code not yet exchanged
   * does not take a place.
   *
   * @since 0.3.0
   */
  connectedAthletes(clientId?: string): number {
    const id = clientId ?? this.firstClientId()
    let count = 0
    for (const grant of this.grants.values()) {
      if (grant.app.clientId === id && !grant.revoked) count++
    }
    return count
  }

  // ---------------------------------------------------------------------------------------------------------
  // Push subscriptions and their events

  /**
   * The application's push subscription (default: the first application's), if it has one.
   *
   * @since 0.3.0
   */
  pushSubscription(clientId?: string): PushSubscription | undefined {
    return this.subscriptions.get(clientId ?? this.firstClientId())
  }

  /**
   * Strava makes an event for the application's subscription (default: the first application's) and tells
   * every listener (the mock server delivers it). Undefined when the app has no subscription: Strava then
   * sends nothing.
   *
   * @since 0.3.0
   */
  sendEvent(input: PushEventInput, nowMillis: number, clientId?: string): PushEvent | undefined {
    const subscription = this.pushSubscription(clientId)
    if (subscription === undefined) return undefined
    const event: PushEvent = {
      aspect_type: input.aspect_type,
      event_time: input.event_time ?? Math.floor(nowMillis / 1000),
      object_id: input.object_id,
      object_type: input.object_type,
      owner_id: input.owner_id,
      subscription_id: subscription.id,
      updates: input.updates ?? {}
    }
    this.eventLog.push(event)
    for (const listener of this.listeners) listener(event, subscription)
    return event
  }

  /**
   * Calls `listener` with every event made from now on; the returned function stops it.
   *
   * @since 0.3.0
   */
  onEvent(listener: (event: PushEvent, subscription: PushSubscription) => void): () => void {
    this.listeners.add(listener)
    return () => {
      this.listeners.delete(listener)
    }
  }

  /**
   * Every event made, oldest first (whether or not anyone delivered it).
   *
   * @since 0.3.0
   */
  get events(): ReadonlyArray<PushEvent> {
    return this.eventLog
  }

  /**
   * Every delivery attempt the mock server made, in the order they ended.
   *
   * @since 0.3.0
   */
  get deliveries(): ReadonlyArray<Delivery> {
    return this.deliveryLog
  }

  /** @since 0.3.0 */
  recordDelivery(delivery: Delivery): void {
    this.deliveryLog.push(delivery)
  }

  /**
   * For a request that would create a push subscription (right credentials, active app, none yet), the
   * callback to challenge: `GET callbackUrl?hub.mode=subscribe&hub.challenge=X&hub.verify_token=T`. The
   * mock server calls it and passes the result on as `callbackValidated`.
   *
   * @since 0.3.0
   */
  callbackToValidate(request: Request): { readonly callbackUrl: string; readonly verifyToken: string } | undefined {
    if (request.method !== "POST" || !request.api || endpointOf(request) !== "push_subscriptions") return undefined
    if (request.path.replace(/\/+$/, "") !== "/push_subscriptions") return undefined
    const form = parseForm(request)
    const app = this.apps.get(form.get("client_id") ?? "")
    if (app === undefined || form.get("client_secret") !== app.clientSecret || !app.active) return undefined
    if (this.subscriptions.has(app.clientId)) return undefined
    return { callbackUrl: form.get("callback_url") ?? "", verifyToken: form.get("verify_token") ?? "" }
  }

  /**
   * Moves the current access token of a grant (or of every grant) to expire at `nowMillis + inMillis`, so a
   * refresh mints a new one. Lets a demo or a black-box test see rotation without waiting hours.
   */
  expireAccessTokens(nowMillis: number, inMillis = 0, athleteId?: number): number {
    let count = 0
    for (const grant of this.grants.values()) {
      if (athleteId !== undefined && grant.athlete.id !== athleteId) continue
      if (grant.current !== undefined) {
        grant.current.expiresAt = nowMillis + inMillis
        count++
      }
    }
    return count
  }

  // ---------------------------------------------------------------------------------------------------------
  // The authorize page

  /** Checks an authorize request as Strava's page does before it shows anything. */
  checkAuthorize(query: URLSearchParams): AuthorizeRequest | AuthorizeRefusal {
    const refuse = (response: Response): AuthorizeRefusal => ({ _tag: "AuthorizeRefusal", response })
    const app = this.apps.get(query.get("client_id") ?? "")
    if (app === undefined) return refuse(badRequest("Application", "client_id", "invalid"))
    const redirectUri = query.get("redirect_uri") ?? ""
    if (!this.redirectAllowed(app, redirectUri)) return refuse(badRequest("Application", "redirect_uri", "invalid"))
    if (query.get("response_type") !== "code") return refuse(badRequest("Application", "response_type", "invalid"))
    const prompt = query.get("approval_prompt") ?? "auto"
    if (prompt !== "auto" && prompt !== "force") return refuse(badRequest("Application", "approval_prompt", "invalid"))
    const requested = (query.get("scope") ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "")
    if (requested.some((s) => !(scopes as ReadonlyArray<string>).includes(s))) {
      return refuse(badRequest("Application", "scope", "invalid"))
    }
    return { app, redirectUri, scopes: requested, state: query.get("state") ?? "", approvalPrompt: prompt }
  }

  /**
   * The athlete's answer on the authorize page, as the redirect URL Strava sends the browser to:
   * `?state=...&code=...&scope=...` (granted scopes, raw commas, `read` always added) or
   * `?state=...&error=access_denied`.
   */
  decide(
    request: AuthorizeRequest,
    decision: { readonly athleteId: number; readonly approve: boolean; readonly scopes?: ReadonlyArray<string> },
    nowMillis: number
  ): string {
    const athlete = this.athletes.get(decision.athleteId) ?? defaultAthlete
    const base = request.redirectUri
    const join = base.includes("?") ? "&" : "?"
    const state = `state=${encodeURIComponent(request.state)}`
    if (!decision.approve) return `${base}${join}${state}&error=access_denied`
    const ticked = (decision.scopes ?? request.scopes).filter((s) => request.scopes.includes(s))
    const granted = scopes.filter((s) => s === "read" || ticked.includes(s))
    const code = randomHex(20)
    this.codes.set(code, {
      code,
      app: request.app,
      athlete,
      scopes: granted,
      expiresAt: nowMillis + this.codeLifetimeMillis,
      used: false
    })
    this.record(
      nowMillis,
      { endpoint: "authorize", method: "GET", clientId: request.app.clientId, status: 302 },
      "approved"
    )
    return `${base}${join}${state}&code=${code}&scope=${granted.join(",")}`
  }

  /**
   * The 403 page Strava shows instead of its authorize page when the app is at its athlete cap and this
   * athlete has no live grant yet (recorded in the log); undefined when the athlete may go on.
   *
   * @since 0.3.0
   */
  athleteLimitRefusal(request: AuthorizeRequest, athleteId: number, nowMillis: number): Response | undefined {
    if (this.athleteCap === undefined) return undefined
    const grant = this.grants.get(this.grantKey(request.app.clientId, athleteId))
    if (grant !== undefined && !grant.revoked) return undefined
    if (this.connectedAthletes(request.app.clientId) < this.athleteCap) return undefined
    this.record(
      nowMillis,
      { endpoint: "authorize", method: "GET", clientId: request.app.clientId, status: 403 },
      "athlete limit exceeded"
    )
    return athleteLimitPage
  }

  /** With `approval_prompt=auto`, Strava skips its page for an athlete who already granted every scope asked. */
  alreadyGranted(request: AuthorizeRequest, athleteId: number): boolean {
    const grant = this.grants.get(this.grantKey(request.app.clientId, athleteId))
    return request.approvalPrompt === "auto" && grant !== undefined && !grant.revoked &&
      request.scopes.every((s) => grant.scopes.includes(s))
  }

  // ---------------------------------------------------------------------------------------------------------
  // The wire

  /** Answers one request at `nowMillis`, applying any fault planned for its endpoint. */
  handle(request: Request, nowMillis: number): Outcome {
    const endpoint = endpointOf(request)
    const form = request.method === "POST" || endpoint === "push_subscriptions" ? parseForm(request) : request.query
    const clientId = form.get("client_id") ?? basic(request)?.id
    const fault = this.faults.take(endpoint, clientId)
    const base: Omit<LogEntry, "status" | "outcome" | "at"> = {
      endpoint,
      method: request.method,
      clientId,
      grantType: endpoint === "token" ? form.get("grant_type") ?? undefined : undefined,
      refreshToken: endpoint === "token" && form.get("grant_type") === "refresh_token"
        ? form.get("refresh_token") ?? undefined
        : undefined
    }
    if (fault !== undefined) {
      const answered = fault.processed === true || fault._tag === "Slow"
        ? this.answer(endpoint, request, form, nowMillis)
        : undefined
      const outcome = Fault.apply(fault, answered?.response, this.rateLimitHeaders(nowMillis))
      const status = outcome._tag === "Respond" ? outcome.response.status : outcome._tag === "Hang" ? "hang" : "reset"
      const description = answered === undefined
        ? `fault ${Fault.describe(fault)}`
        : `${answered.outcome}, then fault ${Fault.describe(fault)}`
      this.record(nowMillis, { ...base, status, fault: Fault.describe(fault) }, description)
      return outcome
    }
    const { outcome, response } = this.answer(endpoint, request, form, nowMillis)
    this.record(nowMillis, { ...base, status: response.status }, outcome)
    return { _tag: "Respond", response, delayMillis: 0 }
  }

  private answer(
    endpoint: Endpoint,
    request: Request,
    form: URLSearchParams,
    nowMillis: number
  ): { readonly response: Response; readonly outcome: string } {
    switch (endpoint) {
      case "token":
        return request.method === "POST" ? this.token(form, nowMillis) : this.notFound()
      case "deauthorize":
        // Retired on 2027-06-01: from then on the path is unknown.
        return request.method === "POST" && nowMillis < this.deauthorizeRetiredAtMillis
          ? this.deauthorize(request, nowMillis)
          : this.notFound()
      case "revoke":
        return request.method === "POST" ? this.revoke(request, form, nowMillis) : this.notFound()
      case "athlete":
        return request.method === "GET" ? this.api(request, nowMillis, "read") : this.notFound()
      case "activities":
        return request.method === "GET" ? this.api(request, nowMillis, "activity:read") : this.notFound()
      case "push_subscriptions":
        return this.pushSubscriptions(request, form, nowMillis)
      case "authorize":
        return { response: outagePage(405), outcome: "authorize is a page: use the mock server" }
      case "unknown":
        return this.notFound()
    }
  }

  private notFound() {
    return {
      response: json(404, {
        message: "Record Not Found",
        errors: [{ resource: "resource", field: "path", code: "invalid" }]
      }),
      outcome: "not found"
    }
  }

  private token(form: URLSearchParams, nowMillis: number) {
    const app = this.apps.get(form.get("client_id") ?? "")
    if (app === undefined) {
      return { response: badRequest("Application", "client_id", "invalid"), outcome: "invalid client_id" }
    }
    if (form.get("client_secret") !== app.clientSecret) {
      return { response: authorizationError("Application", "", "invalid"), outcome: "invalid client_secret" }
    }
    if (!app.active) {
      return { response: envelope(403, "Forbidden", "Application", "Status", "Inactive"), outcome: "app inactive" }
    }
    switch (form.get("grant_type")) {
      case "authorization_code":
        return this.exchange(app, form.get("code") ?? "", nowMillis)
      case "refresh_token":
        return this.refresh(app, form.get("refresh_token") ?? "", nowMillis)
      default:
        return { response: badRequest("RequestToken", "grant_type", "invalid"), outcome: "invalid grant_type" }
    }
  }

  private exchange(app: App, codeValue: string, nowMillis: number) {
    const code = this.codes.get(codeValue)
    if (code === undefined || code.used || code.app.clientId !== app.clientId) {
      return { response: badRequest("RequestToken", "code", "invalid"), outcome: "invalid code" }
    }
    code.used = true
    if (code.expiresAt <= nowMillis) {
      return { response: badRequest("AuthorizationCode", "", "expired"), outcome: "expired code" }
    }
    const key = this.grantKey(app.clientId, code.athlete.id)
    const previous = this.grants.get(key)
    if (previous !== undefined) this.refreshTokens.delete(previous.refreshToken)
    const grant: Grant = {
      app,
      athlete: code.athlete,
      scopes: code.scopes,
      refreshToken: "",
      current: undefined,
      revoked: false
    }
    this.grants.set(key, grant)
    this.mint(grant, nowMillis)
    const current = grant.current!
    return {
      response: json(200, {
        token_type: "Bearer",
        expires_at: Math.floor(current.expiresAt / 1000),
        expires_in: Math.floor((current.expiresAt - nowMillis) / 1000),
        refresh_token: grant.refreshToken,
        access_token: current.token,
        athlete: {
          ...code.athlete,
          resource_state: 2,
          profile_medium: "avatar/athlete/medium.png",
          profile: "avatar/athlete/large.png",
          sex: null,
          premium: false,
          summit: false,
          created_at: "2020-01-01T00:00:00Z",
          updated_at: "2026-01-01T00:00:00Z",
          badge_type_id: 0,
          weight: null
        }
      }),
      outcome: "exchanged"
    }
  }

  private refresh(app: App, presented: string, nowMillis: number) {
    const grant = this.refreshTokens.get(presented)
    if (
      grant === undefined || grant.revoked || grant.refreshToken !== presented || grant.app.clientId !== app.clientId
    ) {
      return { response: badRequest("RefreshToken", "refresh_token", "invalid"), outcome: "invalid refresh token" }
    }
    const current = grant.current
    const same = current !== undefined && current.expiresAt - nowMillis > this.refreshThresholdMillis
    if (!same) this.mint(grant, nowMillis)
    const token = grant.current!
    return {
      response: json(200, {
        token_type: "Bearer",
        access_token: token.token,
        expires_at: Math.floor(token.expiresAt / 1000),
        expires_in: Math.max(0, Math.floor((token.expiresAt - nowMillis) / 1000)),
        refresh_token: grant.refreshToken
      }),
      outcome: same ? "same token" : "refreshed"
    }
  }

  private mint(grant: Grant, nowMillis: number): void {
    this.refreshTokens.delete(grant.refreshToken)
    const access: AccessToken = { token: randomHex(20), grant, expiresAt: nowMillis + this.accessTokenLifetimeMillis }
    this.accessTokens.set(access.token, access)
    grant.current = access
    grant.refreshToken = randomHex(20)
    this.refreshTokens.set(grant.refreshToken, grant)
    this.issuedRefreshTokens.push(grant.refreshToken)
  }

  /** Authenticates a bearer token on the API: the access token, or the response that refuses it. */
  private authenticate(request: Request, nowMillis: number, headers: Record<string, string>) {
    const token = this.accessTokens.get(bearer(request) ?? "")
    if (token === undefined) return { refusal: authorizationError("Application", "", "invalid", headers) }
    if (!token.grant.app.active) {
      return { refusal: envelope(403, "Forbidden", "Application", "Status", "Inactive", headers) }
    }
    if (token.grant.revoked || token.expiresAt <= nowMillis) {
      return { refusal: authorizationError("Athlete", "access_token", "invalid", headers) }
    }
    return { token }
  }

  private api(request: Request, nowMillis: number, scope: string) {
    const limited = this.count(nowMillis, true)
    if (limited !== undefined) return limited
    const headers = this.rateLimitHeaders(nowMillis)
    const { refusal, token } = this.authenticate(request, nowMillis, headers)
    if (token === undefined) return { response: refusal!, outcome: "unauthorized" }
    const scopes = token.grant.scopes
    if (!scopes.includes(scope) && !scopes.includes(`${scope}_all`)) {
      return {
        response: authorizationError("AccessToken", `${scope}_permission`, "missing", headers),
        outcome: "missing scope"
      }
    }
    const athlete = token.grant.athlete
    const body = request.path.startsWith("/athlete/activities")
      ? []
      : { ...athlete, resource_state: 2 }
    return { response: json(200, body, headers), outcome: "ok" }
  }

  private deauthorize(request: Request, nowMillis: number) {
    const limited = this.count(nowMillis, false)
    if (limited !== undefined) return limited
    const headers = this.rateLimitHeaders(nowMillis)
    const { refusal, token } = this.authenticate(request, nowMillis, headers)
    if (token === undefined) return { response: refusal!, outcome: "unauthorized" }
    token.grant.revoked = true
    return { response: json(200, { access_token: token.token }, headers), outcome: "deauthorized" }
  }

  private revoke(request: Request, form: URLSearchParams, nowMillis: number) {
    const limited = this.count(nowMillis, false)
    if (limited !== undefined) return limited
    const headers = this.rateLimitHeaders(nowMillis)
    const credentials = basic(request)
    const app = credentials === undefined ? undefined : this.apps.get(credentials.id)
    if (app === undefined || credentials === undefined || app.clientSecret !== credentials.secret) {
      return { response: authorizationError("Application", "", "invalid", headers), outcome: "invalid client" }
    }
    const value = form.get("token") ?? ""
    if (value === "") return { response: badRequest("Token", "token", "missing"), outcome: "missing token" }
    // Either token revokes the whole grant; an unknown token is not an error (RFC 7009).
    const grant = this.accessTokens.get(value)?.grant ?? this.refreshTokens.get(value)
    if (grant !== undefined && grant.app.clientId === app.clientId) grant.revoked = true
    return { response: { status: 200, headers, body: "" }, outcome: grant === undefined ? "unknown token" : "revoked" }
  }

  /**
   * `/api/v3/push_subscriptions`: create (POST), list (GET), delete (DELETE `/{id}`), each with the app's
   * `client_id` and `client_secret` as form or query parameters. Assumption (STRAVA.md is silent): these calls
   * need no bearer token, as Strava's webhook guide shows, and do not count against the rate limits.
   */
  private pushSubscriptions(request: Request, form: URLSearchParams, nowMillis: number) {
    const app = this.apps.get(form.get("client_id") ?? "")
    if (app === undefined || form.get("client_secret") !== app.clientSecret) {
      return { response: authorizationError("Application", "", "invalid"), outcome: "invalid client" }
    }
    if (!app.active) {
      return { response: envelope(403, "Forbidden", "Application", "Status", "Inactive"), outcome: "app inactive" }
    }
    const path = request.path.replace(/\/+$/, "")
    const existing = this.subscriptions.get(app.clientId)
    if (path === "/push_subscriptions" && request.method === "POST") {
      if (existing !== undefined) {
        return { response: badRequest("PushSubscription", "", "already exists"), outcome: "already exists" }
      }
      if (request.callbackValidated !== true) {
        return {
          response: badRequest("PushSubscription", "callback url", "GET to callback URL does not return 200"),
          outcome: "callback not validated"
        }
      }
      const subscription: PushSubscription = {
        id: this.nextSubscriptionId++,
        clientId: app.clientId,
        callbackUrl: form.get("callback_url") ?? "",
        verifyToken: form.get("verify_token") ?? "",
        createdAt: nowMillis,
        updatedAt: nowMillis
      }
      this.subscriptions.set(app.clientId, subscription)
      return { response: json(201, { id: subscription.id }), outcome: "subscribed" }
    }
    if (path === "/push_subscriptions" && request.method === "GET") {
      const list = existing === undefined ? [] : [{
        id: existing.id,
        resource_state: 2,
        application_id: Number(app.clientId),
        callback_url: existing.callbackUrl,
        created_at: new Date(existing.createdAt).toISOString(),
        updated_at: new Date(existing.updatedAt).toISOString()
      }]
      return { response: json(200, list), outcome: "listed" }
    }
    if (path !== "/push_subscriptions" && request.method === "DELETE") {
      const id = path.slice("/push_subscriptions/".length)
      if (existing === undefined || String(existing.id) !== id) {
        return {
          response: envelope(404, "Resource Not Found", "PushSubscription", "id", "not found"),
          outcome: "unknown subscription"
        }
      }
      this.subscriptions.delete(app.clientId)
      return { response: { status: 204, headers: {}, body: "" }, outcome: "unsubscribed" }
    }
    return this.notFound()
  }

  // ---------------------------------------------------------------------------------------------------------
  // Rate limits: counters on Strava's wall-clock windows (:00/:15/:30/:45 and midnight UTC).

  private windows(nowMillis: number) {
    const quarter = Math.floor(nowMillis / FIFTEEN_MINUTES)
    const day = Math.floor(nowMillis / DAY)
    return { quarter: `q${quarter}`, day: `d${day}`, readQuarter: `rq${quarter}`, readDay: `rd${day}` }
  }

  private current(nowMillis: number) {
    const w = this.windows(nowMillis)
    const get = (k: string) => this.usage.get(k) ?? 0
    return {
      overall: { fifteenMinutes: get(w.quarter), daily: get(w.day) },
      read: { fifteenMinutes: get(w.readQuarter), daily: get(w.readDay) }
    }
  }

  /** The four rate-limit headers, in the spelling real servers use (`X-Ratelimit-*`). */
  rateLimitHeaders(nowMillis: number): Record<string, string> {
    const usage = this.current(nowMillis)
    const pair = (p: { fifteenMinutes: number; daily: number }) => `${p.fifteenMinutes},${p.daily}`
    return {
      "x-ratelimit-limit": pair(this.rateLimits.overall),
      "x-ratelimit-usage": pair(usage.overall),
      "x-readratelimit-limit": pair(this.rateLimits.read),
      "x-readratelimit-usage": pair(usage.read)
    }
  }

  /** Counts one request; answers 429 when it goes past a limit. */
  private count(nowMillis: number, read: boolean) {
    const w = this.windows(nowMillis)
    const bump = (k: string) => this.usage.set(k, (this.usage.get(k) ?? 0) + 1)
    bump(w.quarter)
    bump(w.day)
    if (read) {
      bump(w.readQuarter)
      bump(w.readDay)
    }
    const usage = this.current(nowMillis)
    const limits = this.rateLimits
    const over = usage.overall.fifteenMinutes > limits.overall.fifteenMinutes ||
      usage.overall.daily > limits.overall.daily ||
      (read && (usage.read.fifteenMinutes > limits.read.fifteenMinutes || usage.read.daily > limits.read.daily))
    if (!over) return undefined
    return { response: rateLimited(this.rateLimitHeaders(nowMillis)), outcome: "rate limited" }
  }

  // ---------------------------------------------------------------------------------------------------------

  private record(nowMillis: number, entry: Omit<LogEntry, "at" | "outcome">, outcome: string): void {
    this.entries.push({ at: nowMillis, ...entry, outcome })
  }

  private grantKey(clientId: string, athleteId: number): string {
    return `${clientId}/${athleteId}`
  }

  private firstClientId(): string {
    return this.apps.keys().next().value ?? defaultApp.clientId
  }

  private redirectAllowed(app: App, redirectUri: string): boolean {
    let host: string
    try {
      host = new URL(redirectUri).hostname
    } catch {
      // stravalib's example passes a bare host ("www.example.com"); Strava compares the host part.
      host = redirectUri.split(/[/:?#]/, 1)[0] ?? ""
    }
    const domain = app.callbackDomain.toLowerCase()
    host = host.toLowerCase()
    return host === "localhost" || host === "127.0.0.1" || host === "[::1]" || host === domain ||
      host.endsWith(`.${domain}`)
  }
}
