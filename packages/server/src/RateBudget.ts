/**
 * One rate-limit budget for the whole app. Strava's limits are per application, so every replica shares them,
 * and every counted answer tells the app-wide usage (`X-RateLimit-*`, `X-ReadRateLimit-*`: "15min,daily").
 * Each replica learns the global usage from the answers it gets, adds the calls it sent since, and when a
 * window is spent answers calls at once with a 429 of its own instead of sending them: Strava counts refused
 * calls toward the daily total, so a call sent into a spent window only makes the lock-out longer.
 *
 * - Windows are Strava's: the quarter hour (:00, :15, :30, :45) and the UTC day. A usage learned in an
 *   earlier window counts as zero in the next one.
 * - Token calls (`/oauth/token`) never count and are never held back: a refresh is always sent.
 * - Every other call counts toward the overall limit, and toward the read limit unless it is an upload.
 * - The 429 it answers carries the usage it knows and `Retry-After`, and the header `x-strava-auth-budget:
 *   spent` (Strava's own 429 has no such header); core's error classification turns it into `RateLimited`
 *   with `retryAt` at the window's end, as for Strava's.
 *
 * @since 0.3.0
 */
import type * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as RateLimit from "@strava-auth/core/RateLimit"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"

/**
 * Strava's published limits, used until an answer tells the app's own.
 *
 * @since 0.3.0
 * @category constants
 */
export const stravaLimits = {
  overall: { fifteenMinutes: 200, daily: 2000 },
  read: { fifteenMinutes: 100, daily: 1000 }
} as const

const QUARTER = 15 * 60_000
const DAY = 24 * 60 * 60_000

interface Pair {
  fifteenMinutes: number
  daily: number
}

interface Known {
  limit: Pair
  /** Usage Strava reported, in the windows it was reported in, plus what this replica sent since. */
  usage: Pair
  quarter: number
  day: number
}

/**
 * What the budget knows now (for a status page or metrics).
 *
 * @since 0.3.0
 * @category models
 */
export interface Snapshot {
  readonly overall: { readonly limit: Pair; readonly usage: Pair }
  readonly read: { readonly limit: Pair; readonly usage: Pair }
  /** When the spent window resets (epoch ms), or `undefined` while calls may go. */
  readonly spentUntil: number | undefined
}

/**
 * @since 0.3.0
 * @category models
 */
export interface RateBudgetShape {
  /** Takes one call from the budget: `undefined` when it may go, else when the spent window resets. */
  readonly admit: (read: boolean) => Effect.Effect<number | undefined>
  /** Learns the app-wide usage from an answer's headers. */
  readonly observe: (headers: Headers.Headers) => Effect.Effect<void>
  readonly snapshot: Effect.Effect<Snapshot>
}

/**
 * @since 0.3.0
 * @category tags
 */
export class RateBudget extends Context.Tag("@strava-auth/server/RateBudget")<RateBudget, RateBudgetShape>() {}

const windowsAt = (now: number) => ({ quarter: Math.floor(now / QUARTER), day: Math.floor(now / DAY) })

/**
 * A budget for this replica (one per process: share it between every client of the app).
 *
 * @since 0.3.0
 * @category constructors
 */
export const make: Effect.Effect<RateBudgetShape> = Effect.sync(() => {
  const fresh = (limit: Pair): Known => ({
    limit: { ...limit },
    usage: { fifteenMinutes: 0, daily: 0 },
    quarter: -1,
    day: -1
  })
  const overall = fresh(stravaLimits.overall)
  const read = fresh(stravaLimits.read)

  // Moves a counter into the windows of `now`: a usage from an earlier window counts as zero.
  const roll = (known: Known, now: number) => {
    const { day, quarter } = windowsAt(now)
    if (known.quarter !== quarter) known.usage.fifteenMinutes = 0
    if (known.day !== day) known.usage.daily = 0
    known.quarter = quarter
    known.day = day
  }
  const spentUntil = (known: Known, now: number): number | undefined =>
    known.usage.daily >= known.limit.daily
      ? RateLimit.nextDailyReset(now)
      : known.usage.fifteenMinutes >= known.limit.fifteenMinutes
      ? RateLimit.nextFifteenMinuteReset(now)
      : undefined
  const until = (now: number, isRead: boolean) => {
    const a = spentUntil(overall, now)
    const b = isRead ? spentUntil(read, now) : undefined
    return a === undefined ? b : b === undefined ? a : Math.max(a, b)
  }

  return {
    admit: (isRead) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        roll(overall, now)
        roll(read, now)
        const spent = until(now, isRead)
        if (spent !== undefined) return spent
        overall.usage.fifteenMinutes++
        overall.usage.daily++
        if (isRead) {
          read.usage.fifteenMinutes++
          read.usage.daily++
        }
        return undefined
      }),
    observe: (headers) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const reported = RateLimit.fromHeaders(headers)
        const learn = (known: Known, limit: Option.Option<Pair>, usage: Option.Option<Pair>) => {
          roll(known, now)
          if (Option.isSome(limit)) known.limit = { ...limit.value }
          // The answer counts every call Strava had seen; calls of this replica still in flight are not in it,
          // so the larger of the two is kept.
          if (Option.isSome(usage)) {
            known.usage.fifteenMinutes = Math.max(known.usage.fifteenMinutes, usage.value.fifteenMinutes)
            known.usage.daily = Math.max(known.usage.daily, usage.value.daily)
          }
        }
        learn(overall, reported.limit, reported.usage)
        learn(read, reported.readLimit, reported.readUsage)
      }),
    snapshot: Effect.map(Clock.currentTimeMillis, (now) => {
      roll(overall, now)
      roll(read, now)
      return {
        overall: { limit: { ...overall.limit }, usage: { ...overall.usage } },
        read: { limit: { ...read.limit }, usage: { ...read.usage } },
        spentUntil: until(now, true)
      }
    })
  } satisfies RateBudgetShape
})

const isTokenCall = (url: string) => /\/oauth\/token(?:[?#]|$)/.test(url)
const isUpload = (url: string) => /\/uploads(?:[/?#]|$)/.test(url)

/**
 * An `HttpClient` that spends from the budget: what the app's Strava calls (OAuth and API) go through.
 *
 * @since 0.3.0
 * @category combinators
 */
export const wrap = (budget: RateBudgetShape) => (client: HttpClient.HttpClient): HttpClient.HttpClient =>
  HttpClient.transform(client, (effect, request) => {
    if (isTokenCall(request.url)) return effect
    return Effect.gen(function*() {
      const spent = yield* budget.admit(!isUpload(request.url))
      if (spent !== undefined) {
        const now = yield* Clock.currentTimeMillis
        const known = yield* budget.snapshot
        const pair = (p: Pair) => `${p.fifteenMinutes},${p.daily}`
        return HttpClientResponse.fromWeb(
          request,
          new Response(
            JSON.stringify({
              message: "Rate Limit Exceeded",
              errors: [{ resource: "Application", field: "rate limit", code: "exceeded" }]
            }),
            {
              status: 429,
              headers: {
                "content-type": "application/json",
                "retry-after": String(Math.max(1, Math.ceil((spent - now) / 1000))),
                "x-ratelimit-limit": pair(known.overall.limit),
                "x-ratelimit-usage": pair(known.overall.usage),
                "x-readratelimit-limit": pair(known.read.limit),
                "x-readratelimit-usage": pair(known.read.usage),
                "x-strava-auth-budget": "spent"
              }
            }
          )
        )
      }
      const response = yield* effect
      yield* budget.observe(response.headers)
      return response
    })
  })

/**
 * Replaces the `HttpClient` with one that spends from a budget (the `RateBudget` provided beside it).
 *
 * @since 0.3.0
 * @category layers
 */
export const layer: Layer.Layer<HttpClient.HttpClient | RateBudget, never, HttpClient.HttpClient> = Layer
  .effectContext(
    Effect.gen(function*() {
      const budget = yield* make
      const client = wrap(budget)(yield* HttpClient.HttpClient)
      return Context.make(RateBudget, budget).pipe(Context.add(HttpClient.HttpClient, client))
    })
  )
