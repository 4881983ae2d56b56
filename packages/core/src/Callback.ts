/**
 * Parsing the redirect Strava sends the browser back with:
 * `?state=...&code=...&scope=read,activity:read` on success, `?state=...&error=access_denied` on Cancel.
 *
 * The checks run in the order that keeps a forged redirect from reaching anything: the state first (a
 * redirect that is not ours is refused whatever else it says), then a denial, then the code, then the
 * granted scopes against the required ones.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"

import type { InvalidScope } from "./AuthorizationError.js"
import { AuthorizationDenied, InsufficientScope, MissingCode, StateMismatch } from "./AuthorizationError.js"
import * as OAuthState from "./OAuthState.js"
import * as StravaError from "./StravaError.js"
import * as StravaScope from "./StravaScope.js"

/**
 * A checked redirect.
 *
 * @since 0.1.0
 * @category models
 */
export interface Callback {
  /** Short-lived and single-use; exchange it with `StravaOAuth.exchangeCode`. */
  readonly code: Redacted.Redacted<string>
  /** What the athlete granted: the token response does not say, so keep this. */
  readonly scopes: ReadonlyArray<StravaScope.StravaScope>
  readonly state: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The state this login put in its authorize URL. */
  readonly state: string
  /** Scopes the app cannot work without; a redirect granting fewer fails with `InsufficientScope`. */
  readonly requiredScopes?: ReadonlyArray<StravaScope.StravaScope> | undefined
}

/**
 * @since 0.1.0
 * @category errors
 */
export type CallbackError = AuthorizationDenied | StateMismatch | MissingCode | InsufficientScope | InvalidScope

/**
 * The query parameters of a redirect given as a full URL, a path with a query, or a bare query string
 * (with or without its `?`). A fragment is ignored.
 *
 * @since 0.1.0
 * @category parsing
 */
export const searchParams = (input: string | URL): URLSearchParams => {
  if (typeof input !== "string") return new URLSearchParams(input.search)
  const withoutFragment = input.trim().split("#", 1)[0] ?? ""
  const question = withoutFragment.indexOf("?")
  return new URLSearchParams(question >= 0 ? withoutFragment.slice(question + 1) : withoutFragment)
}

/**
 * Parses and checks a redirect.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parse = (input: string | URL, options: Options): Effect.Effect<Callback, CallbackError> =>
  Effect.suspend((): Effect.Effect<Callback, CallbackError> => {
    const params = searchParams(input)
    const state = params.get("state")
    if (state === null || state === "") return Effect.fail(new StateMismatch({ reason: "Missing" }))
    if (!OAuthState.equals(options.state, state)) return Effect.fail(new StateMismatch({ reason: "Mismatch" }))
    const error = params.get("error")
    // Text from the redirect goes into a message: capped, no control characters.
    if (error !== null) return Effect.fail(new AuthorizationDenied({ error: StravaError.scrub(error) }))
    const code = params.get("code")
    if (code === null || code === "") return Effect.fail(new MissingCode())
    // Strava may one day grant a scope this version does not know; keep the ones we do.
    const granted = StravaScope.split(params.get("scope") ?? "").filter(StravaScope.is)
    const missing = StravaScope.missing(options.requiredScopes ?? [], granted)
    if (missing.length > 0) return Effect.fail(new InsufficientScope({ missing, granted }))
    return Effect.succeed({ code: Redacted.make(code), scopes: granted, state })
  })
