/**
 * What the daemon has done, in Prometheus' text format (0.0.4): `GET /metrics` on the socket, and alone on
 * TCP with `--metrics-listen HOST:PORT` (for a Prometheus server that cannot open the daemon's socket). Never a
 * token or a secret: names, counts, seconds and the process's own figures.
 *
 * Per account (today the one account, `default`): seconds until the access token expires, whether a login is
 * needed, refreshes asked of Strava by outcome, failures by kind (the error's tag), and the last rate-limit
 * usage Strava reported (from a 429's headers: the refreshes run in a helper process, whose successful
 * answers' headers the daemon does not see).
 *
 * @internal The command's own, not part of `@strava-auth/daemon`'s entry.
 * @since 0.2.0
 */
import * as Http from "node:http"

import type { RefreshEngine, StravaError } from "@strava-auth/core"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"

import type * as Refresher from "./Refresher.js"

/**
 * The counters one account's refreshes feed.
 *
 * @since 0.2.0
 * @category models
 */
export interface Counters {
  readonly refreshes: Map<"refreshed" | "same" | "current", number>
  readonly failures: Map<string, number>
  rateLimit:
    | { readonly usage: StravaError.RateLimited["usage"]; readonly limit: StravaError.RateLimited["limit"] }
    | undefined
}

/**
 * @since 0.2.0
 * @category constructors
 */
export const counters = (): Counters => ({
  refreshes: new Map([["refreshed", 0], ["same", 0], ["current", 0]]),
  failures: new Map(),
  rateLimit: undefined
})

/**
 * The executor, counting what each refresh came to.
 *
 * @since 0.2.0
 * @category constructors
 */
export const counting =
  (counted: Counters, execute: RefreshEngine.Executor): RefreshEngine.Executor => (key, options) =>
    execute(key, options).pipe(
      Effect.tapBoth({
        onSuccess: (outcome) =>
          Effect.sync(() => {
            const kind = outcome._tag === "Current"
              ? "current"
              : Redacted.value(outcome.tokens.accessToken) === Redacted.value(outcome.previous.accessToken)
              ? "same"
              : "refreshed"
            counted.refreshes.set(kind, (counted.refreshes.get(kind) ?? 0) + 1)
          }),
        onFailure: (error) =>
          Effect.sync(() => {
            counted.failures.set(error._tag, (counted.failures.get(error._tag) ?? 0) + 1)
            if (error._tag === "RateLimited") counted.rateLimit = { usage: error.usage, limit: error.limit }
          })
      })
    )

/** A label value, escaped as the format asks (backslash, double quote, newline). */
const label = (value: string) => value.replace(/\\/g, "\\\\").replace(/"/g, "\\\"").replace(/\n/g, "\\n")

/**
 * One account's state for the text.
 *
 * @since 0.2.0
 * @category models
 */
export interface Account {
  readonly name: string
  readonly snapshot: Refresher.Snapshot
  readonly counters: Counters
}

/**
 * The exposition text at `nowMillis`.
 *
 * @since 0.2.0
 * @category rendering
 */
export const render = (accounts: ReadonlyArray<Account>, nowMillis: number): string => {
  const lines: Array<string> = []
  const family = (name: string, type: "gauge" | "counter", help: string, samples: ReadonlyArray<string>) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...samples)
  }
  const of = (account: Account, extra = "") => `{account="${label(account.name)}"${extra}}`
  family(
    "strava_auth_token_expires_in_seconds",
    "gauge",
    "Seconds until the access token expires (negative once expired); absent without a token.",
    accounts.flatMap((a) =>
      a.snapshot.tokens === undefined
        ? []
        : [
          `strava_auth_token_expires_in_seconds${of(a)} ${
            Math.floor(a.snapshot.tokens.remainingMillis(nowMillis) / 1000)
          }`
        ]
    )
  )
  family(
    "strava_auth_login_needed",
    "gauge",
    "1 when the account needs `strava-auth login` (no token file, or Strava refused the grant).",
    accounts.map((a) => `strava_auth_login_needed${of(a)} ${a.snapshot.status === "needs_login" ? 1 : 0}`)
  )
  family(
    "strava_auth_consecutive_failures",
    "gauge",
    "Refresh failures since the last success.",
    accounts.map((a) => `strava_auth_consecutive_failures${of(a)} ${a.snapshot.consecutiveFailures}`)
  )
  family(
    "strava_auth_refreshes_total",
    "counter",
    "Refreshes asked of Strava, by outcome: refreshed (a new token), same (Strava's one-hour rule), current (another process had just refreshed).",
    accounts.flatMap((a) =>
      [...a.counters.refreshes].map(([outcome, n]) =>
        `strava_auth_refreshes_total${of(a, `,outcome="${outcome}"`)} ${n}`
      )
    )
  )
  family(
    "strava_auth_refresh_failures_total",
    "counter",
    "Failed refreshes, by kind (the error: TransportError, ServerError, RateLimited, InvalidGrant, ...).",
    accounts.flatMap((a) =>
      [...a.counters.failures].map(([kind, n]) =>
        `strava_auth_refresh_failures_total${of(a, `,kind="${label(kind)}"`)} ${n}`
      )
    )
  )
  const windows = (pick: (a: Account) => StravaError.RateLimited["usage"] | undefined, name: string, help: string) =>
    family(
      name,
      "gauge",
      help,
      accounts.flatMap((a) =>
        Option.match(pick(a) ?? Option.none(), {
          onNone: () => [],
          onSome: (w) => [
            `${name}${of(a, ",window=\"15m\"")} ${w.fifteenMinutes}`,
            `${name}${of(a, ",window=\"day\"")} ${w.daily}`
          ]
        })
      )
    )
  windows(
    (a) => a.counters.rateLimit?.usage,
    "strava_auth_rate_limit_usage",
    "The app's request count Strava last reported (on a 429), per window."
  )
  windows(
    (a) => a.counters.rateLimit?.limit,
    "strava_auth_rate_limit_limit",
    "The app's rate limit Strava last reported (on a 429), per window."
  )
  const memory = process.memoryUsage()
  const cpu = process.cpuUsage()
  family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", [
    `process_resident_memory_bytes ${memory.rss}`
  ])
  family("process_heap_bytes", "gauge", "V8 heap in use, in bytes.", [`process_heap_bytes ${memory.heapUsed}`])
  family("process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds.", [
    `process_cpu_seconds_total ${(cpu.user + cpu.system) / 1e6}`
  ])
  family("process_start_time_seconds", "gauge", "Start time of the process since the epoch, in seconds.", [
    `process_start_time_seconds ${Math.round((nowMillis - process.uptime() * 1000) / 1000)}`
  ])
  return `${lines.join("\n")}\n`
}

/**
 * The content type of the text format.
 *
 * @since 0.2.0
 * @category rendering
 */
export const contentType = "text/plain; version=0.0.4; charset=utf-8"

/**
 * Parses `--metrics-listen`: `HOST:PORT` (`[::1]:PORT` for IPv6), a port 1-65535.
 *
 * @since 0.2.0
 * @category parsing
 */
export const parseListen = (text: string): { readonly host: string; readonly port: number } | undefined => {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.trim())
  if (match === null) return undefined
  const port = Number(match[3])
  if (port < 1 || port > 65535) return undefined
  return { host: match[1] ?? match[2]!, port }
}

/**
 * A TCP server that answers `GET /metrics` and nothing else (404), closed with the scope.
 *
 * @since 0.2.0
 * @category serving
 */
export const serveTcp = (listen: { readonly host: string; readonly port: number }, text: () => string) =>
  Effect.acquireRelease(
    Effect.async<Http.Server, Error>((resume) => {
      const server = Http.createServer((req, res) => {
        const path = (req.url ?? "/").split("?")[0]
        if (path !== "/metrics") {
          res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("Only /metrics here.\n")
          return
        }
        if (req.method !== "GET" && req.method !== "HEAD") {
          res.writeHead(405, { allow: "GET", "content-type": "text/plain; charset=utf-8" }).end("GET only.\n")
          return
        }
        const body = text()
        res.writeHead(200, { "content-type": contentType, "content-length": Buffer.byteLength(body) })
        res.end(req.method === "HEAD" ? undefined : body)
      })
      server.once("error", (error) => resume(Effect.fail(error)))
      server.listen(listen.port, listen.host, () => resume(Effect.succeed(server)))
    }),
    (server) =>
      Effect.async<void>((resume) => {
        server.close(() => resume(Effect.void))
        server.closeAllConnections()
      })
  )
