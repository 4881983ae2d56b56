/**
 * Strava's rate-limit headers and windows.
 *
 * `X-RateLimit-Limit`/`X-RateLimit-Usage` (overall) and `X-ReadRateLimit-Limit`/`X-ReadRateLimit-Usage`
 * (non-upload endpoints) each hold `"15min,daily"`. Real servers spell them `X-Ratelimit-Usage`, so they are
 * read case-insensitively. The 15-minute window resets at :00, :15, :30 and :45; the daily one at midnight UTC.
 *
 * @since 0.1.0
 */
import * as Headers from "@effect/platform/Headers"
import * as Option from "effect/Option"

/**
 * A pair of counters, `15min,daily`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Window {
  readonly fifteenMinutes: number
  readonly daily: number
}

/**
 * What the headers of one response said.
 *
 * @since 0.1.0
 * @category models
 */
export interface RateLimit {
  readonly limit: Option.Option<Window>
  readonly usage: Option.Option<Window>
  readonly readLimit: Option.Option<Window>
  readonly readUsage: Option.Option<Window>
}

const FIFTEEN_MINUTES = 15 * 60 * 1000
const DAY = 24 * 60 * 60 * 1000

/**
 * Parses `"15min,daily"`; anything else is `None`.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseWindow = (value: string | undefined): Option.Option<Window> => {
  if (value === undefined) return Option.none()
  const match = /^\s*(\d+)\s*,\s*(\d+)\s*$/.exec(value)
  if (match === null) return Option.none()
  return Option.some({ fifteenMinutes: Number(match[1]), daily: Number(match[2]) })
}

/**
 * Reads the four headers, whatever their case.
 *
 * @since 0.1.0
 * @category parsing
 */
export const fromHeaders = (headers: Headers.Input): RateLimit => {
  // `Headers.fromInput` lower-cases the names and `Headers.get` the name asked for.
  const normalized = Headers.fromInput(headers)
  const window = (name: string) => Option.flatMap(Headers.get(normalized, name), (v) => parseWindow(v))
  return {
    limit: window("X-RateLimit-Limit"),
    usage: window("X-RateLimit-Usage"),
    readLimit: window("X-ReadRateLimit-Limit"),
    readUsage: window("X-ReadRateLimit-Usage")
  }
}

/**
 * The start of the next 15-minute window (:00, :15, :30, :45 UTC) after `nowMillis`.
 *
 * @since 0.1.0
 * @category windows
 */
export const nextFifteenMinuteReset = (nowMillis: number): number =>
  Math.floor(nowMillis / FIFTEEN_MINUTES) * FIFTEEN_MINUTES + FIFTEEN_MINUTES

/**
 * The next midnight UTC after `nowMillis`.
 *
 * @since 0.1.0
 * @category windows
 */
export const nextDailyReset = (nowMillis: number): number => Math.floor(nowMillis / DAY) * DAY + DAY

const exhausted = (limit: Option.Option<Window>, usage: Option.Option<Window>, key: keyof Window): boolean =>
  Option.isSome(limit) && Option.isSome(usage) && usage.value[key] >= limit.value[key]

/**
 * When requests may be made again after a 429: midnight UTC when a daily counter is spent, otherwise the
 * next 15-minute boundary (also when the headers are missing, which is the earliest Strava could reset).
 *
 * @since 0.1.0
 * @category windows
 */
export const resetsAt = (limits: RateLimit, nowMillis: number): number =>
  exhausted(limits.limit, limits.usage, "daily") || exhausted(limits.readLimit, limits.readUsage, "daily")
    ? nextDailyReset(nowMillis)
    : nextFifteenMinuteReset(nowMillis)
