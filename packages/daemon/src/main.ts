/**
 * The entry point, bundled as CommonJS (`dist/strava-auth.cjs`). `strava-auth token` is what scripts run most,
 * often once per request, so it is answered from here with `node:net` and `node:fs` alone (`FastToken`): the
 * daemon's socket, or, when no daemon runs, the token file while its token has more than the margin left. No
 * Effect, no CLI parser: a start-up close to Node's own. Everything else, and `token` whenever the fast path
 * defers (a refresh due, anything unusual), loads the full CLI (`bin.ts`, bundled as `dist/cli.js`).
 *
 * @since 0.1.0
 */
import * as Path from "node:path"
import { pathToFileURL } from "node:url"

import * as Accounts from "./Accounts.js"
import * as FastToken from "./FastToken.js"
import * as Paths from "./Paths.js"
import * as SocketTrust from "./SocketTrust.js"

const args = process.argv.slice(2)

/**
 * `token [--json] [--socket PATH] [--account NAME]` (or `--flag=value`), or undefined for anything the fast path
 * does not take (the full path then answers, or says what is wrong).
 */
const fastToken = ():
  | { readonly json: boolean; readonly socket: string | undefined; readonly account: string | undefined }
  | undefined =>
{
  if (args[0] !== "token") return undefined
  let json = false
  let socket: string | undefined
  let account: string | undefined
  for (let i = 1; i < args.length; i++) {
    const arg = args[i]!
    if (arg === "--json") json = true
    else if (arg === "--socket" && i + 1 < args.length) socket = args[++i]
    else if (arg.startsWith("--socket=")) socket = arg.slice("--socket=".length)
    else if (arg === "--account" && i + 1 < args.length) account = args[++i]
    else if (arg.startsWith("--account=")) account = arg.slice("--account=".length)
    else return undefined
  }
  return { json, socket, account }
}

/**
 * The full CLI, an ES module beside this file in the bundle (`dist/cli.js`; this entry is CommonJS, which
 * starts faster). Loaded only when the fast path does not answer.
 */
const full = () => import(pathToFileURL(Path.join(__dirname, "cli.js")).href)

/** A variable as the full path reads it: unset or blank is absent. */
const env = (name: string): string | undefined => {
  const value = process.env[name]
  return value !== undefined && value.trim() !== "" ? value : undefined
}

const fast = fastToken()
// The account (`--account`, else `STRAVA_AUTH_ACCOUNT`), as `Accounts` lays them out; a malformed name is the
// full path's to refuse.
const account = fast === undefined ? undefined : fast.account ?? env("STRAVA_AUTH_ACCOUNT") ?? Accounts.defaultName
if (fast === undefined || account === undefined || Accounts.problem(account, "--account") !== undefined) {
  void full()
} else {
  const socketPath = fast.socket ?? env("STRAVA_AUTH_SOCKET") ?? Paths.defaultSocket(Paths.current())
  // A socket someone else could have put there is refused, not asked: its answer could be their token.
  const refusal = SocketTrust.refusal(socketPath)
  if (Buffer.byteLength(socketPath) > 100) void full() // too long for a Unix socket: the full path says so
  else if (refusal !== undefined) {
    process.stderr.write(`strava-auth: ${refusal}\n`)
    process.exitCode = 78 // configuration (DaemonError.ExitCode)
  } else {
    FastToken.ask(socketPath, Accounts.socketPath("/token.json", account), (reply) => {
      // 404: the daemon does not serve this account (yet); its file is the answer, as with no daemon
      if (reply._tag === "Reply" && reply.status !== 404) return answer(reply.status, reply.body, fast.json)
      // No daemon: the token file, when it holds a token with more than the margin left; else the full path
      // (which refreshes it, or says what is wrong).
      const margin = FastToken.marginOf(process.env["STRAVA_AUTH_REFRESH_MARGIN"])
      if (reply._tag !== "Failed" && !fast.json && margin !== undefined) {
        const file = Accounts.tokenFileOf(
          env("STRAVA_AUTH_TOKEN_FILE") ?? Paths.defaultTokenFile(Paths.current()),
          account
        )
        const verdict = FastToken.fileVerdict(file, margin, Date.now())
        if (verdict._tag === "Answer") return void process.stdout.write(`${verdict.token}\n`)
      }
      void full()
    })
  }
}

/**
 * One string field of a reply (`Wire.TokenJson`, `Wire.ErrorReply`), checked by hand: this path loads no
 * Effect, so not Effect's Schema; `undefined` when the body has no such string.
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

function answer(status: number, body: string, json: boolean) {
  const token = status === 200 ? field(body, "access_token") : undefined
  if (token !== undefined) {
    process.stdout.write(`${json ? body : token}\n`)
    return
  }
  process.stderr.write(`strava-auth: ${field(body, "message") ?? `the daemon answered ${status}`}\n`)
  // the exit codes of DaemonError: 77 login needed, 75 temporary failure
  process.exitCode = field(body, "error") === "needs_login" ? 77 : 75
}
