/**
 * Fault injection: how the mock Strava misbehaves, and when.
 *
 * A plan targets one endpoint (or `*`) and fires either for the next `times` calls, or on each call with a
 * `probability`, drawn from a seeded generator so a failing run can be replayed. Plans are checked in the
 * order they were added; the first that fires wins.
 *
 * A fault with `processed: true` lets Strava do the work (rotate the refresh token, say) and then loses the
 * answer: the nastiest case for a refresher, and a real one.
 *
 * @since 0.1.0
 */
import type { Endpoint, Outcome } from "./Simulator.js"
import type { Response } from "./StravaResponse.js"
import { envelope, outagePage, rateLimited } from "./StravaResponse.js"

/**
 * @since 0.1.0
 * @category models
 */
export type Fault =
  | { readonly _tag: "ServerError"; readonly status: 500 | 502 | 503 | 504; readonly processed?: boolean }
  | { readonly _tag: "RateLimited"; readonly processed?: boolean }
  | { readonly _tag: "Hang"; readonly processed?: boolean }
  | { readonly _tag: "Reset"; readonly processed?: boolean }
  | { readonly _tag: "MalformedJson"; readonly processed?: boolean }
  | { readonly _tag: "Slow"; readonly millis: number; readonly processed?: boolean }
  /**
   * Strava's error envelope with this status and error item, e.g. a fresh authorization code refused as
   * `AuthorizationCode`/`code`/`invalid` (real apps saw that, then the same code accepted two seconds later).
   * Not processed unless `processed`: a refused code stays unused.
   */
  | {
    readonly _tag: "Envelope"
    readonly status: number
    readonly resource: string
    readonly field: string
    readonly code: string
    readonly processed?: boolean
  }

/**
 * When a plan fires.
 *
 * @since 0.1.0
 * @category models
 */
export type When =
  | { readonly times: number }
  | { readonly probability: number; readonly seed?: number | undefined }

/**
 * @since 0.1.0
 * @category models
 */
export interface Plan {
  readonly endpoint: Endpoint | "*"
  readonly fault: Fault | ReadonlyArray<Fault>
  readonly when: When
  /** Only the calls of this app (its client id): one app's outage beside another's service. Every app's by default. */
  readonly clientId?: string | undefined
}

/**
 * A small seeded generator (mulberry32): the same seed gives the same faults.
 *
 * @since 0.1.0
 * @category random
 */
export const seeded = (seed: number): () => number => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

interface Active {
  readonly plan: Plan
  remaining: number
  readonly random: () => number
}

/**
 * The plans in force.
 *
 * @since 0.1.0
 * @category models
 */
export class Faults {
  private active: Array<Active> = []

  add(plan: Plan): void {
    const seed = "seed" in plan.when ? plan.when.seed ?? 1 : 1
    this.active.push({ plan, remaining: "times" in plan.when ? plan.when.times : Infinity, random: seeded(seed) })
  }

  clear(): void {
    this.active = []
  }

  /** The fault for this call to `endpoint` (by the app `clientId`, when known), if a plan fires. */
  take(endpoint: Endpoint, clientId?: string | undefined): Fault | undefined {
    for (const entry of this.active) {
      if (entry.plan.endpoint !== "*" && entry.plan.endpoint !== endpoint) continue
      if (entry.plan.clientId !== undefined && entry.plan.clientId !== clientId) continue
      if (entry.remaining <= 0) continue
      const when = entry.plan.when
      if ("probability" in when && entry.random() >= when.probability) continue
      entry.remaining--
      const faults: ReadonlyArray<Fault> = Array.isArray(entry.plan.fault)
        ? entry.plan.fault
        : [entry.plan.fault as Fault]
      return faults[Math.floor(entry.random() * faults.length)] ?? faults[0]
    }
    this.active = this.active.filter((entry) => entry.remaining > 0)
    return undefined
  }
}

/**
 * A one-word description for the request log.
 *
 * @since 0.1.0
 * @category formatting
 */
export const describe = (fault: Fault): string => {
  switch (fault._tag) {
    case "ServerError":
      return `${fault.status}`
    case "RateLimited":
      return "429"
    case "Slow":
      return `slow ${fault.millis}ms`
    case "Hang":
      return "hang"
    case "Reset":
      return "reset"
    case "MalformedJson":
      return "malformed json"
    case "Envelope":
      return `${fault.status} ${fault.resource}/${fault.field}/${fault.code}`
  }
}

/**
 * What the fault does to the answer (`answered` is the real answer when the request was processed).
 *
 * @since 0.1.0
 * @category combinators
 */
export const apply = (
  fault: Fault,
  answered: Response | undefined,
  rateLimitHeaders: Record<string, string>
): Outcome => {
  switch (fault._tag) {
    case "ServerError":
      return { _tag: "Respond", response: outagePage(fault.status), delayMillis: 0 }
    case "RateLimited":
      return { _tag: "Respond", response: rateLimited(rateLimitHeaders), delayMillis: 0 }
    case "Hang":
      return { _tag: "Hang" }
    case "Reset":
      return { _tag: "Reset" }
    case "MalformedJson":
      return {
        _tag: "Respond",
        response: {
          status: 200,
          headers: { "content-type": "application/json; charset=utf-8" },
          body: (answered?.body ?? "{\"token_type\":\"Bearer\",\"access_token\":\"").slice(0, 20)
        },
        delayMillis: 0
      }
    case "Slow":
      return {
        _tag: "Respond",
        response: answered ?? outagePage(503),
        delayMillis: fault.millis
      }
    case "Envelope":
      return {
        _tag: "Respond",
        response: envelope(
          fault.status,
          fault.status === 401 ? "Authorization Error" : "Bad Request",
          fault.resource,
          fault.field,
          fault.code
        ),
        delayMillis: 0
      }
  }
}
