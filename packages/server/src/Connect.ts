/**
 * "Connect with Strava" for a web app: routes an app mounts (`router`), on `@effect/platform`'s HttpRouter.
 *
 * - `GET {prefix}/connect[?next=/path]`: a fresh state, bound to this browser by an HttpOnly, SameSite=Lax
 *   cookie holding a nonce, kept server-side in `strava_auth_states` (digests only: one use, expiring), so a
 *   connect started on one replica completes on any other; then a redirect to Strava's authorize page.
 * - `GET {prefix}/callback`: takes the state (one use), checks that this browser started it, checks the
 *   granted scopes, exchanges the code (a code refused as `AuthorizationCode`/`code`/`invalid` is tried once
 *   more after about two seconds: real apps saw fresh codes refused and then accepted), stores the grant
 *   under the athlete's id (a new consent replaces the old grant, with its scopes), calls `onConnected`, and
 *   redirects to `next` or `afterConnect`.
 * - `POST {prefix}/disconnect` (form field `athlete_id`): for an athlete the app's `mayDisconnect` allows,
 *   revokes at Strava and then removes the grant (`Athletes.disconnect`).
 *
 * Every failure is a page (`Page`) that says what happened and what to do. A cap reached on Strava's side
 * (the 2026 program refuses athletes on its own page past the app's athlete cap) never comes back here: the
 * app's page should show how many athletes are connected (`SqlGrantStore.count`).
 *
 * @since 0.3.0
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Callback from "@strava-auth/core/Callback"
import { GrantStore } from "@strava-auth/core/GrantStore"
import * as OAuthState from "@strava-auth/core/OAuthState"
import type * as StravaError from "@strava-auth/core/StravaError"
import { StravaOAuth } from "@strava-auth/core/StravaOAuth"
import type { StravaScope } from "@strava-auth/core/StravaScope"
import type { SummaryAthlete, TokenSet } from "@strava-auth/core/Token"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"

import { Athletes } from "./Athletes.js"
import * as Page from "./Page.js"
import { isAthleteId } from "./SqlGrantStore.js"
import { sha256Hex } from "./TokenCipher.js"

/**
 * What `onConnected` is told.
 *
 * @since 0.3.0
 * @category models
 */
export interface Connected {
  readonly athleteId: string
  readonly athlete: SummaryAthlete | undefined
  readonly scopes: ReadonlyArray<StravaScope>
  /** Whether the athlete had a grant already (a reconnect). */
  readonly reconnected: boolean
  readonly request: HttpServerRequest.HttpServerRequest
}

/**
 * @since 0.3.0
 * @category models
 */
export interface Options {
  /** The app's public origin, e.g. `https://app.example.com`: the redirect URI is `{publicUrl}{prefix}/callback`. */
  readonly publicUrl: string
  /** Where the routes live. Default `/strava`. */
  readonly prefix?: string | undefined
  /** Scopes asked for, and required on the way back. Default `read`, `activity:read`. */
  readonly scopes?: ReadonlyArray<StravaScope> | undefined
  /** Scopes the app cannot work without (a subset of `scopes`). Default: all of `scopes`. */
  readonly requiredScopes?: ReadonlyArray<StravaScope> | undefined
  /** Strava's `approval_prompt`. Default `auto` (a connected athlete is not asked again). */
  readonly approvalPrompt?: "auto" | "force" | undefined
  /** Where the browser goes after a connect (unless `next` was given). Default `/`. */
  readonly afterConnect?: string | undefined
  /** Where the browser goes after a disconnect. Default `/`. */
  readonly afterDisconnect?: string | undefined
  /** Where the app ties the athlete to its own user. A failure here is shown; the grant stays stored. */
  readonly onConnected?: ((connected: Connected) => Effect.Effect<void, unknown>) | undefined
  /**
   * Whether the request may disconnect the athlete (the app's own authorization: the signed-in user owns this
   * athlete). Default: refused, so that nobody can disconnect anyone until the app says who may.
   */
  readonly mayDisconnect?:
    | ((request: HttpServerRequest.HttpServerRequest, athleteId: string) => Effect.Effect<boolean>)
    | undefined
  /** How long a connect may take on Strava's page. Default 10 minutes. */
  readonly stateLifetime?: Duration.DurationInput | undefined
  /** The wait before trying a refused fresh code again. Default 2 seconds. */
  readonly codeRetryDelay?: Duration.DurationInput | undefined
}

/**
 * The cookie that binds a connect to the browser that started it.
 *
 * @since 0.3.0
 * @category constants
 */
export const cookieName = "strava_auth_connect"

/** A path on this site only: `/x`, never `//host` or `https://...` (no open redirect). */
const localPath = (value: string | undefined): string | undefined =>
  value !== undefined && /^\/(?![/\\])[\x21-\x7e]*$/.test(value) && value.length <= 512 ? value : undefined

const databaseDown = (error: SqlError | { readonly message: string }) =>
  Effect.as(
    Effect.logError("the database did not answer").pipe(Effect.annotateLogs({ error: error.message })),
    Page.render({
      status: 503,
      title: "Try again in a moment",
      detail: "The app could not reach its database. Nothing was changed; reload this page in a moment."
    })
  )

const isFreshCodeRefusal = (error: StravaError.StravaError) =>
  error._tag === "InvalidGrant" && error.grant === "authorization_code" &&
  error.resource.toLowerCase() === "authorizationcode" && error.field === "code" && error.code === "invalid"

/** The options with their defaults, resolved once per router. */
interface Settings {
  readonly options: Options
  readonly prefix: string
  readonly publicUrl: string
  readonly redirectUri: string
  readonly scopes: ReadonlyArray<StravaScope>
  readonly requiredScopes: ReadonlyArray<StravaScope>
  readonly lifetime: Duration.Duration
  readonly secure: boolean
  readonly connectAgain: { readonly href: string; readonly text: string }
  readonly home: { readonly href: string; readonly text: string }
}

const settingsOf = (options: Options): Settings => {
  const prefix = (options.prefix ?? "/strava").replace(/\/+$/, "")
  const publicUrl = options.publicUrl.replace(/\/+$/, "")
  const scopes = options.scopes ?? ["read", "activity:read"]
  return {
    options,
    prefix,
    publicUrl,
    redirectUri: `${publicUrl}${prefix}/callback`,
    scopes,
    requiredScopes: options.requiredScopes ?? scopes,
    lifetime: Duration.decode(options.stateLifetime ?? Duration.minutes(10)),
    secure: publicUrl.startsWith("https://"),
    connectAgain: { href: `${prefix}/connect`, text: "Connect with Strava again" },
    home: { href: options.afterConnect ?? "/", text: "Back to the app" }
  }
}

/** `GET {prefix}/connect`: a fresh state for this browser, then Strava's authorize page. */
const connectRoute = (settings: Settings) => {
  const { lifetime, options, prefix, redirectUri, scopes, secure } = settings
  return Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const oauth = yield* StravaOAuth
    const request = yield* HttpServerRequest.HttpServerRequest
    const next = localPath(new URL(request.url, "http://x").searchParams.get("next") ?? undefined)
    const state = yield* OAuthState.generate
    const nonce = yield* OAuthState.generate
    const url = yield* oauth.authorizeUrl({
      redirectUri,
      state,
      scope: scopes,
      approvalPrompt: options.approvalPrompt ?? "auto"
    })
    const seconds = Math.max(1, Math.round(Duration.toSeconds(lifetime)))
    yield* sql`INSERT INTO strava_auth_states (digest, binding, return_to, expires_at)
      VALUES (${yield* sha256Hex(state)}, ${yield* sha256Hex(nonce)}, ${next ?? null},
        now() + make_interval(secs => ${seconds}))`
    // Old states go as new ones come (an index-free sweep of a small table).
    yield* sql`DELETE FROM strava_auth_states WHERE expires_at < now() - interval '1 hour'`
    return yield* HttpServerResponse.redirect(url, { status: 302, headers: { "cache-control": "no-store" } }).pipe(
      HttpServerResponse.setCookie(cookieName, nonce, {
        httpOnly: true,
        sameSite: "lax",
        secure,
        path: prefix,
        maxAge: lifetime
      })
    )
  }).pipe(
    Effect.catchTags({
      SqlError: databaseDown,
      InvalidScope: (error) =>
        Effect.succeed(Page.render({ status: 500, title: "This app is misconfigured", detail: error.message })),
      CookieError: () =>
        Effect.succeed(Page.render({ status: 500, title: "This app is misconfigured", detail: "bad cookie settings" }))
    }),
    Effect.withSpan("Connect.connect")
  )
}

/** The code exchange, with one more try after a short wait for a fresh code Strava refused. */
const exchangeFor = (settings: Settings) => (callback: Callback.Callback) =>
  Effect.flatMap(StravaOAuth, (oauth) =>
    oauth.exchangeCode(callback).pipe(
      Effect.catchIf(isFreshCodeRefusal, () =>
        Effect.zipRight(
          Effect.sleep(settings.options.codeRetryDelay ?? Duration.seconds(2)),
          oauth.exchangeCode(callback)
        ))
    ))

/** A redirect Strava sent back without a grant (Cancel, an unticked scope, no code): what to tell the athlete. */
const refusal = (settings: Settings, error: Callback.CallbackError): Page.Message => {
  switch (error._tag) {
    case "AuthorizationDenied":
      return {
        status: 403,
        title: "You did not connect your Strava account",
        detail: "Strava says the authorization was cancelled. Nothing was stored. Connect again whenever you want to.",
        links: [settings.connectAgain, settings.home]
      }
    case "InsufficientScope":
      return {
        status: 403,
        title: "The app needs a permission you did not tick",
        detail: `${error.message} Nothing was stored. Connect again and leave the box ticked.`,
        links: [settings.connectAgain, settings.home]
      }
    default:
      return {
        status: 400,
        title: "This answer from Strava is incomplete",
        detail: error.message,
        links: [settings.connectAgain]
      }
  }
}

/**
 * Takes the state (one use: it is gone whatever comes next) and checks that this browser started the
 * connect: where to go afterwards, or the page that says why not.
 */
const refused = (message: Page.Message) => ({ _tag: "Refused" as const, message })

const takeState = (settings: Settings, request: HttpServerRequest.HttpServerRequest, state: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ readonly binding: string; readonly return_to: string | null }>`DELETE FROM
      strava_auth_states WHERE digest = ${yield* sha256Hex(state)} AND expires_at > now() RETURNING binding, return_to`
    const nonce = request.cookies[cookieName]
    const taken = rows[0]
    if (taken === undefined) {
      return refused({
        status: 400,
        title: "This connect link has expired or was already used",
        detail: "Each connect can be completed once, within a few minutes. Start it again.",
        links: [settings.connectAgain]
      })
    }
    if (nonce === undefined || !OAuthState.equals(taken.binding, yield* sha256Hex(nonce))) {
      yield* Effect.logWarning("a connect answer came to a browser that did not start it; refused")
      return refused({
        status: 400,
        title: "This connect was not started in this browser",
        detail: "For your safety the app only completes a connect in the browser that started it. " +
          "If you did start it, start it again here.",
        links: [settings.connectAgain]
      })
    }
    return { _tag: "Taken" as const, returnTo: taken.return_to }
  })

/** `GET {prefix}/callback`: the state taken once, the binding checked, the code exchanged, the grant stored. */
const callbackRoute = (settings: Settings): Effect.Effect<
  HttpServerResponse.HttpServerResponse,
  never,
  SqlClient.SqlClient | GrantStore | StravaOAuth | HttpServerRequest.HttpServerRequest
> => {
  const { connectAgain, home, options, prefix, requiredScopes, secure } = settings
  const exchange = exchangeFor(settings)
  return Effect.gen(function*() {
    const store = yield* GrantStore
    const request = yield* HttpServerRequest.HttpServerRequest
    const url = new URL(request.url, "http://x")
    const state = url.searchParams.get("state") ?? ""
    const clearCookie = HttpServerResponse.unsafeSetCookie(cookieName, "", {
      httpOnly: true,
      sameSite: "lax",
      secure,
      path: prefix,
      maxAge: Duration.zero
    })
    const page = (message: Page.Message) => clearCookie(Page.render(message))
    if (state === "") {
      return page({
        status: 400,
        title: "This is not an answer from Strava",
        detail: "The address has no state. Start from the app's Connect with Strava button.",
        links: [connectAgain]
      })
    }
    const taken = yield* takeState(settings, request, state)
    if (taken._tag === "Refused") return page(taken.message)
    const checked = yield* Effect.either(Callback.parse(url, { state, requiredScopes }))
    if (checked._tag === "Left") return page(refusal(settings, checked.left))
    const tokens: TokenSet | StravaError.StravaError = yield* exchange(checked.right).pipe(
      Effect.catchAll((error) => Effect.succeed(error))
    )
    if (!("accessToken" in tokens)) {
      yield* Effect.logWarning("the code exchange failed").pipe(Effect.annotateLogs({ error: tokens.message }))
      return page({
        status: 502,
        title: "Strava did not complete the connection",
        detail: `${tokens.message} Nothing was stored.`,
        links: [connectAgain, home]
      })
    }
    const athleteId = tokens.athlete?.id
    if (athleteId === undefined) {
      return page({
        status: 502,
        title: "Strava's answer did not say who connected",
        detail: "Nothing was stored. Connect again.",
        links: [connectAgain]
      })
    }
    const key = String(athleteId)
    const before = yield* store.get(key).pipe(Effect.orElseSucceed(() => undefined))
    const saved = yield* Effect.either(store.put(key, tokens))
    if (saved._tag === "Left") {
      yield* Effect.logError("a connected grant could not be stored").pipe(
        Effect.annotateLogs({ athlete_id: key, error: saved.left.message })
      )
      return page({
        status: 503,
        title: "Connected at Strava, but not saved",
        detail: "Strava connected your account, but the app could not save it (its database did not answer). " +
          "Connect again in a moment; Strava will not ask you again.",
        links: [connectAgain]
      })
    }
    yield* Effect.logInfo("athlete connected").pipe(Effect.annotateLogs({ athlete_id: key }))
    if (options.onConnected !== undefined) {
      const result = yield* Effect.either(options.onConnected({
        athleteId: key,
        athlete: tokens.athlete,
        scopes: tokens.scopes,
        reconnected: before !== undefined && before._tag === "Some",
        request
      }))
      if (result._tag === "Left") {
        yield* Effect.logError("onConnected failed").pipe(Effect.annotateLogs({ athlete_id: key }))
        return page({
          status: 500,
          title: "Connected, but the app could not finish",
          detail: "Your Strava account is connected; the app failed to record it. Try connecting again.",
          links: [connectAgain]
        })
      }
    }
    return clearCookie(
      HttpServerResponse.redirect(taken.returnTo ?? options.afterConnect ?? "/", {
        status: 303,
        headers: { "cache-control": "no-store" }
      })
    )
  }).pipe(
    Effect.catchTags({ SqlError: databaseDown }),
    Effect.withSpan("Connect.callback")
  )
}

/** `POST {prefix}/disconnect`: the app's say, same-origin only, then revoke at Strava and remove. */
const disconnectRoute = (settings: Settings) => {
  const { home, options, publicUrl } = settings
  return Effect.gen(function*() {
    const athletes = yield* Athletes
    const request = yield* HttpServerRequest.HttpServerRequest
    // A form posted from another site must not disconnect anyone (the browser sends Origin on POSTs).
    const origin = request.headers["origin"]
    if (origin !== undefined && origin !== new URL(publicUrl).origin) {
      return Page.render({ status: 403, title: "Refused", detail: "This request came from another site." })
    }
    const form = yield* request.urlParamsBody.pipe(Effect.orElseSucceed(() => []))
    const athleteId = form.find(([name]) => name === "athlete_id")?.[1] ?? ""
    if (!isAthleteId(athleteId)) {
      return Page.render({ status: 400, title: "Which athlete?", detail: "The form has no valid athlete_id." })
    }
    const allowed = options.mayDisconnect === undefined ? false : yield* options.mayDisconnect(request, athleteId)
    if (!allowed) {
      return Page.render({
        status: 403,
        title: "Not allowed",
        detail: "You may not disconnect this athlete. Sign in as the account that connected it."
      })
    }
    const result = yield* Effect.either(athletes.disconnect(athleteId))
    if (result._tag === "Left") {
      const error = result.left
      if (error._tag === "GrantStoreError") return yield* databaseDown(error)
      return Page.render({
        status: 502,
        title: "Strava did not confirm the disconnect",
        detail: `${error.message} The connection is kept so that it can still be revoked; try again.`,
        links: [home]
      })
    }
    return HttpServerResponse.redirect(options.afterDisconnect ?? "/", { status: 303 })
  }).pipe(Effect.withSpan("Connect.disconnect"))
}

/**
 * The routes. They need the `SqlClient` (states), `StravaOAuth`, the `GrantStore` and `Athletes`.
 *
 * @since 0.3.0
 * @category routes
 */
export const router = (options: Options) => {
  const settings = settingsOf(options)
  const { prefix } = settings
  return HttpRouter.empty.pipe(
    HttpRouter.get(`${prefix}/connect` as HttpRouter.PathInput, connectRoute(settings)),
    HttpRouter.get(`${prefix}/callback` as HttpRouter.PathInput, callbackRoute(settings)),
    HttpRouter.post(`${prefix}/disconnect` as HttpRouter.PathInput, disconnectRoute(settings))
  )
}
