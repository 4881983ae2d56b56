/**
 * Strava's OAuth scopes.
 *
 * Strava deviates from RFC 6749 here: the `scope` parameter is a **comma**-separated list, both in the
 * authorize request and in the redirect back, where it lists what the athlete actually granted.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

import { InvalidScope } from "./AuthorizationError.js"

/**
 * The seven scopes Strava knows.
 *
 * @since 0.1.0
 * @category schemas
 */
export const StravaScope = Schema.Literal(
  "read",
  "read_all",
  "profile:read_all",
  "profile:write",
  "activity:read",
  "activity:read_all",
  "activity:write"
)

/**
 * @since 0.1.0
 * @category models
 */
export type StravaScope = typeof StravaScope.Type

/**
 * Every scope, in Strava's order.
 *
 * @since 0.1.0
 * @category constants
 */
export const all: ReadonlyArray<StravaScope> = StravaScope.literals

/**
 * stravalib's default: `read,activity:read`.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults: ReadonlyArray<StravaScope> = ["read", "activity:read"]

/**
 * Whether a string is one of the seven scopes.
 *
 * @since 0.1.0
 * @category predicates
 */
export const is: (u: unknown) => u is StravaScope = Schema.is(StravaScope)

/**
 * Splits Strava's comma-separated list (spaces around items tolerated, empty items dropped).
 *
 * @since 0.1.0
 * @category parsing
 */
export const split = (input: string): ReadonlyArray<string> =>
  input.split(",").map((item) => item.trim()).filter((item) => item.length > 0)

/**
 * Parses a comma-separated list (or an array of names) into scopes, failing with `InvalidScope` for any
 * unknown name before anything is sent to Strava. Duplicates are removed; order is kept.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parse = (
  input: string | ReadonlyArray<string>
): Effect.Effect<ReadonlyArray<StravaScope>, InvalidScope> => {
  const items = typeof input === "string" ? split(input) : input.map((item) => item.trim())
  const unknown = items.filter((item) => !is(item))
  if (unknown.length > 0) {
    return Effect.fail(new InvalidScope({ unknown, known: all }))
  }
  return Effect.succeed(dedupe(items.filter(is)))
}

/**
 * Formats scopes as Strava expects them: comma-separated, no spaces.
 *
 * @since 0.1.0
 * @category formatting
 */
export const format = (scopes: ReadonlyArray<StravaScope>): string => dedupe(scopes).join(",")

/**
 * The scopes of `required` that are not in `granted`. A `*_all` scope covers its plain sibling
 * (`activity:read_all` covers `activity:read`, `read_all` covers `read`).
 *
 * @since 0.1.0
 * @category combinators
 */
export const missing = (
  required: ReadonlyArray<StravaScope>,
  granted: ReadonlyArray<StravaScope>
): ReadonlyArray<StravaScope> => required.filter((scope) => !covers(granted, scope))

/**
 * Whether `granted` includes `scope`, directly or through its `_all` variant.
 *
 * @since 0.1.0
 * @category predicates
 */
export const covers = (granted: ReadonlyArray<StravaScope>, scope: StravaScope): boolean =>
  granted.includes(scope) || (is(`${scope}_all`) && granted.includes(`${scope}_all` as StravaScope))

const dedupe = <A>(items: ReadonlyArray<A>): ReadonlyArray<A> => Array.from(new Set(items))
