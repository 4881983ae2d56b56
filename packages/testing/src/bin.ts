/**
 * `strava-mock`: the mock Strava server from the command line.
 *
 * Prints its base URL alone on the first line of stdout (so `read url` works in a script), the rest on
 * stderr, and runs until SIGINT or SIGTERM.
 *
 * @since 0.1.0
 */
import { parseArgs } from "node:util"

import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"

import * as MockServer from "./MockServer.js"
import * as Simulator from "./Simulator.js"

const usage = `Usage: strava-mock [options]

A mock Strava (OAuth endpoints, an authorize page, GET /api/v3/athlete, push subscriptions and their
events) on 127.0.0.1.
Prints its base URL on stdout; use it as STRAVA_BASE_URL, and <url>/api/v3 as STRAVA_API_URL.

Options:
  --port N                   port to listen on (default 0: a free port)
  --host ADDR                loopback address to bind (default 127.0.0.1)
  --client-id ID             the registered app's client id (default ${Simulator.defaultApp.clientId})
  --client-secret SECRET     its secret (default: $STRAVA_CLIENT_SECRET, else a fixed mock secret)
  --app-name NAME            shown on the authorize page
  --callback-domain HOST     redirect URIs must be on it (localhost and 127.0.0.1 always allowed)
  --athlete-id N             the athlete who signs in (default ${Simulator.defaultAthlete.id}); the first id with --athletes
  --athletes N               N athletes, ids from --athlete-id on (default 1); the page lets you choose one
  --athlete-cap N            refuse a new athlete on the authorize page (403) once N are connected
  --duplicate-events         deliver every webhook event twice, as real apps have seen
  --event-retry-delay D      gap between the three attempts to deliver an event (default 1s; Strava: ~2m)
  --access-token-lifetime D  default 6h; e.g. 90s, 2m, "90 seconds"
  --refresh-threshold D      the one-hour rule's hour (default 1h)
  --code-lifetime D          authorization codes (default 10m)
  --rate-limit A,B           15-minute and daily limits (default 200,2000)
  --read-rate-limit A,B      read limits (default 100,1000)
  --inactive                 the app is inactive (403 Application/Status/Inactive)
  --now ISO                  Strava's date and time (e.g. 2027-06-02T00:00:00Z: deauthorize is retired)
  -h, --help                 this text
`

/** `90`, `90s`, `2m`, `6h`, `1d`, `90 seconds`: milliseconds, or undefined when unreadable. */
const parseDuration = (input: string): number | undefined => {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|millis(?:econds?)?|s|secs?|seconds?|m|mins?|minutes?|h|hours?|d|days?)?\s*$/i
    .exec(input)
  if (match === null) return undefined
  const n = Number(match[1])
  const unit = (match[2] ?? "s").toLowerCase()
  const factor = unit.startsWith("ms") || unit.startsWith("milli")
    ? 1
    : unit.startsWith("s")
    ? 1000
    : unit.startsWith("m")
    ? 60_000
    : unit.startsWith("h")
    ? 3_600_000
    : 86_400_000
  return n * factor
}

const fail = (message: string): never => {
  process.stderr.write(`strava-mock: ${message}\nRun strava-mock --help for the options.\n`)
  process.exit(64)
}

const pair = (flag: string, value: string | undefined, fallback: { fifteenMinutes: number; daily: number }) => {
  if (value === undefined) return fallback
  const match = /^(\d+),(\d+)$/.exec(value)
  return match === null
    ? fail(`${flag} takes two numbers, "15min,daily" (e.g. 200,2000); got "${value}"`)
    : { fifteenMinutes: Number(match[1]), daily: Number(match[2]) }
}

const duration = (flag: string, value: string | undefined): number | undefined => {
  if (value === undefined) return undefined
  return parseDuration(value) ?? fail(`${flag} takes a duration such as 90s, 2m or 6h; got "${value}"`)
}

const main = () => {
  let parsed
  try {
    parsed = parseArgs({
      options: {
        "port": { type: "string" },
        "host": { type: "string" },
        "client-id": { type: "string" },
        "client-secret": { type: "string" },
        "app-name": { type: "string" },
        "callback-domain": { type: "string" },
        "athlete-id": { type: "string" },
        "athletes": { type: "string" },
        "athlete-cap": { type: "string" },
        "duplicate-events": { type: "boolean" },
        "event-retry-delay": { type: "string" },
        "access-token-lifetime": { type: "string" },
        "refresh-threshold": { type: "string" },
        "code-lifetime": { type: "string" },
        "rate-limit": { type: "string" },
        "read-rate-limit": { type: "string" },
        "inactive": { type: "boolean" },
        "now": { type: "string" },
        "help": { type: "boolean", short: "h" }
      },
      strict: true
    })
  } catch (error) {
    return fail(error instanceof Error ? error.message : String(error))
  }
  const v = parsed.values
  if (v.help === true) {
    process.stdout.write(usage)
    return
  }
  const port = v.port === undefined ? 0 : Number(v.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port takes 0-65535; got "${v.port}"`)
  const clientId = v["client-id"] ?? Simulator.defaultApp.clientId
  if (!/^\d+$/.test(clientId)) fail(`--client-id must be numeric, as Strava's are; got "${clientId}"`)
  const athleteId = v["athlete-id"] === undefined ? Simulator.defaultAthlete.id : Number(v["athlete-id"])
  if (!Number.isInteger(athleteId) || athleteId <= 0) fail(`--athlete-id takes a positive integer`)
  const count = v.athletes === undefined ? 1 : Number(v.athletes)
  if (!Number.isInteger(count) || count <= 0) fail(`--athletes takes a positive integer; got "${v.athletes}"`)
  const cap = v["athlete-cap"] === undefined ? undefined : Number(v["athlete-cap"])
  if (cap !== undefined && (!Number.isInteger(cap) || cap < 0)) {
    fail(`--athlete-cap takes a whole number; got "${v["athlete-cap"]}"`)
  }
  const now = v.now === undefined ? undefined : Date.parse(v.now)
  if (now !== undefined && !Number.isFinite(now)) fail(`--now takes a date and time such as 2027-06-02T00:00:00Z`)
  const app: Simulator.App = {
    clientId,
    clientSecret: v["client-secret"] ?? process.env["STRAVA_CLIENT_SECRET"] ?? Simulator.defaultApp.clientSecret,
    name: v["app-name"] ?? Simulator.defaultApp.name,
    callbackDomain: v["callback-domain"] ?? Simulator.defaultApp.callbackDomain,
    active: v.inactive !== true
  }
  const options: MockServer.Options = {
    port,
    host: v.host ?? "127.0.0.1",
    apps: [app],
    athletes: count === 1 ? [{ ...Simulator.defaultAthlete, id: athleteId }] : Simulator.makeAthletes(count, athleteId),
    athleteCap: cap,
    clockOffsetMillis: now === undefined ? undefined : now - Date.now(),
    duplicateEvents: v["duplicate-events"] === true,
    eventRetryDelayMillis: duration("--event-retry-delay", v["event-retry-delay"]),
    accessTokenLifetimeMillis: duration("--access-token-lifetime", v["access-token-lifetime"]),
    refreshThresholdMillis: duration("--refresh-threshold", v["refresh-threshold"]),
    codeLifetimeMillis: duration("--code-lifetime", v["code-lifetime"]),
    rateLimits: {
      overall: pair("--rate-limit", v["rate-limit"], Simulator.stravaRateLimits.overall),
      read: pair("--read-rate-limit", v["read-rate-limit"], Simulator.stravaRateLimits.read)
    }
  }
  const program = Effect.gen(function*() {
    const { server } = yield* MockServer.make(options)
    process.stdout.write(`${server.url}\n`)
    process.stderr.write(
      `strava-mock: listening on ${server.url} (API ${server.apiUrl}); client id ${app.clientId}; ` +
        `authorize page ${server.url}/oauth/authorize. Ctrl-C stops it.\n`
    )
    return yield* Effect.never
  }).pipe(
    Effect.scoped,
    Effect.catchAll((error) =>
      Effect.sync(() => {
        process.stderr.write(`strava-mock: cannot listen: ${error.message}\n`)
        process.exitCode = 69
      })
    )
  )
  NodeRuntime.runMain(program, { disablePrettyLogger: true })
}

main()
