/**
 * The authorize URL the athlete opens, web or mobile.
 *
 * The output matches stravalib's `Client.authorization_url` byte for byte: the same parameter order
 * (`client_id, redirect_uri, approval_prompt, scope, response_type`, then `state` when given) and Python's
 * `urlencode`/`quote_plus` percent-encoding, so `scope=read,activity:read` is sent as `read%2Cactivity%3Aread`.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"

import type { InvalidScope } from "./AuthorizationError.js"
import * as StravaConfig from "./StravaConfig.js"
import * as StravaScope from "./StravaScope.js"

/**
 * Strava's web origin (the same constant as `StravaConfig.defaultBaseUrl`).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultBaseUrl: string = StravaConfig.defaultBaseUrl

/**
 * @since 0.1.0
 * @category models
 */
export type ApprovalPrompt = "auto" | "force"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly clientId: string | number
  readonly redirectUri: string
  /** Names or a comma-separated list; defaults to `read,activity:read`. */
  readonly scope?: ReadonlyArray<string> | string | undefined
  /** `auto` (default) skips the page for an athlete who already granted these scopes; `force` always asks. */
  readonly approvalPrompt?: ApprovalPrompt | undefined
  readonly state?: string | undefined
  /** Defaults to `https://www.strava.com`; point it at a mock in tests. */
  readonly baseUrl?: string | undefined
  /** `/oauth/mobile/authorize` instead of `/oauth/authorize`. */
  readonly mobile?: boolean | undefined
}

/**
 * Percent-encodes like Python's `quote_plus`: only `A-Z a-z 0-9 _ . - ~` stay as they are, a space
 * becomes `+`.
 *
 * @since 0.1.0
 * @category encoding
 */
export const quotePlus = (value: string): string =>
  encodeURIComponent(value)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, "+")

/**
 * Builds the authorize URL. Fails with `InvalidScope` for an unknown scope, before any request.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<string, InvalidScope> =>
  Effect.map(StravaScope.parse(options.scope ?? StravaScope.defaults), (scopes) => {
    const params: Array<[string, string]> = [
      ["client_id", String(options.clientId)],
      ["redirect_uri", options.redirectUri],
      ["approval_prompt", options.approvalPrompt ?? "auto"],
      ["scope", StravaScope.format(scopes)],
      ["response_type", "code"]
    ]
    if (options.state !== undefined) params.push(["state", options.state])
    const base = (options.baseUrl ?? defaultBaseUrl).replace(/\/+$/, "")
    const path = options.mobile === true ? "/oauth/mobile/authorize" : "/oauth/authorize"
    return `${base}${path}?${params.map(([k, v]) => `${k}=${quotePlus(v)}`).join("&")}`
  })
