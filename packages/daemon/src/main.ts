/**
 * The entry point. `strava-auth token` is what scripts run most, often once per request, so when the daemon
 * answers it is served from here with `node:http` alone: no Effect, no CLI parser, a start-up close to
 * Node's own. Everything else, and `token` when no daemon answers (the file fallback, which may refresh),
 * loads the full CLI (`bin.ts`).
 *
 * @since 0.1.0
 */
import * as Http from "node:http"

import * as Paths from "./Paths.js"
import * as SocketTrust from "./SocketTrust.js"

const args = process.argv.slice(2)

/** `token [--json] [--socket PATH | --socket=PATH]`, or undefined for anything the fast path does not take. */
const fastToken = (): { readonly json: boolean; readonly socket: string | undefined } | undefined => {
  if (args[0] !== "token") return undefined
  let json = false
  let socket: string | undefined
  for (let i = 1; i < args.length; i++) {
    const arg = args[i]!
    if (arg === "--json") json = true
    else if (arg === "--socket" && i + 1 < args.length) socket = args[++i]
    else if (arg.startsWith("--socket=")) socket = arg.slice("--socket=".length)
    else return undefined
  }
  return { json, socket }
}

const full = () => import("./bin.js")

const fast = fastToken()
if (fast === undefined) {
  void full()
} else {
  const env = process.env["STRAVA_AUTH_SOCKET"]
  const socketPath = fast.socket ??
    (env !== undefined && env.trim() !== "" ? env : Paths.defaultSocket(Paths.current()))
  // A socket someone else could have put there is refused, not asked: its answer could be their token.
  const refusal = SocketTrust.refusal(socketPath)
  if (refusal !== undefined) {
    process.stderr.write(`strava-auth: ${refusal}\n`)
    process.exitCode = 78 // configuration (DaemonError.ExitCode)
  } else ask(socketPath, fast.json)
}

/**
 * One string field of a reply (`Wire.TokenJson`, `Wire.ErrorReply`), checked by hand: this path loads nothing
 * but `node:http`, so not Effect's Schema; `undefined` when the body has no such string.
 */
function field(body: string, name: "access_token" | "message" | "error"): string | undefined {
  let value: unknown
  try {
    value = JSON.parse(body)
  } catch {
    return undefined
  }
  if (typeof value !== "object" || value === null || !(name in value)) return undefined
  const found: unknown = Reflect.get(value, name)
  return typeof found === "string" && found !== "" ? found : undefined
}

function ask(socketPath: string, json: boolean) {
  const req = Http.request({ socketPath, path: "/token.json", headers: { host: "localhost" }, agent: false }, (res) => {
    let body = ""
    res.setEncoding("utf8")
    res.on("data", (chunk: string) => (body += chunk))
    res.on("end", () => {
      const token = res.statusCode === 200 ? field(body, "access_token") : undefined
      if (token !== undefined) {
        process.stdout.write(`${json ? body : token}\n`)
        return
      }
      process.stderr.write(`strava-auth: ${field(body, "message") ?? `the daemon answered ${res.statusCode}`}\n`)
      // the exit codes of DaemonError: 77 login needed, 75 temporary failure
      process.exitCode = field(body, "error") === "needs_login" ? 77 : 75
    })
  })
  req.setTimeout(2000, () => req.destroy(new Error("timeout")))
  // No daemon (or a stale socket): the full CLI reads the file and refreshes it if due.
  req.on("error", () => void full())
  req.end()
}
