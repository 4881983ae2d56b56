#!/usr/bin/env node
// `pnpm start`: strava-auth end to end, with no Strava account.
//
// 1. starts the mock Strava (@strava-auth/testing) with short token lifetimes,
// 2. runs `strava-auth login --no-browser` and plays the athlete pressing Authorize on the mock's page,
// 3. starts `strava-auth daemon` against the mock,
// 4. reads the token from the daemon's Unix socket every few seconds, as `curl --unix-socket` would,
//    and shows it being refreshed before it expires.
//
// Ctrl-C stops everything cleanly. Options: --seconds N (stop by itself after N seconds),
// --lifetime SECONDS (access-token lifetime at the mock, default 60).
import * as Http from "node:http"
import { parseArgs } from "node:util"

import { authBin, envFor, login, session, startMock, stopOnSignals } from "./lib/session.mjs"

const { values } = parseArgs({
  options: { seconds: { type: "string" }, lifetime: { type: "string", default: "60" } }
})
const lifetime = Number(values.lifetime)
const seconds = values.seconds === undefined ? undefined : Number(values.seconds)
if (!(lifetime >= 6) || (seconds !== undefined && !(seconds > 0))) {
  console.error("usage: node scripts/demo.mjs [--seconds N] [--lifetime SECONDS (>= 6)]")
  process.exit(64)
}

const s = session("demo")
const socket = s.socket
const show = (token) => (token.length > 12 ? `${token.slice(0, 8)}…` : token) // a habit worth keeping
const prefix = (name) => (d) => process.stdout.write(`  ${name} | ${d}`.replace(/\n(?=.)/g, `\n  ${name} | `))

const { state, stop } = stopOnSignals(s, "Stopping (the daemon removes its socket on SIGTERM)…")

const getSocket = (path) =>
  new Promise((resolve) => {
    const req = Http.request({ socketPath: socket, path, headers: { host: "localhost" } }, (res) => {
      let body = ""
      res.on("data", (d) => (body += d))
      res.on("end", () => resolve({ status: res.statusCode, body }))
    })
    req.on("error", (error) => resolve({ status: 0, body: error.message }))
    req.end()
  })

// 1. The mock Strava.
const threshold = Math.floor(lifetime * 2 / 3)
const baseUrl = await startMock(s, ["--access-token-lifetime", `${lifetime}s`, "--refresh-threshold", `${threshold}s`])
console.log(
  `mock Strava:   ${baseUrl}  (access tokens live ${lifetime}s; a new one is minted in the last ${threshold}s)`
)
const env = envFor(s, baseUrl, { STRAVA_AUTH_REFRESH_MARGIN: `${Math.floor(threshold * 3 / 4)}s` })

// 2. Log in, playing the athlete.
console.log("\n$ strava-auth login --no-browser")
try {
  const title = await login(s, baseUrl, env, prefix("login"))
  console.log(`  browser | ${title}`)
} catch (error) {
  console.error(String(error))
  await stop(1)
}

// 3. The daemon.
console.log(`\n$ strava-auth daemon`)
const daemon = s.start([authBin, "daemon"], env)
daemon.stderr.on("data", prefix("daemon"))
daemon.once("exit", (code) => {
  if (!state.stopping) {
    console.error(`the daemon exited (${code})`)
    stop(1)
  }
})

// 4. Scripts read the token from the socket (once the daemon answers on it).
for (const until = Date.now() + 10_000; (await getSocket("/health")).status === 0;) {
  if (Date.now() > until) {
    console.error("the daemon did not open its socket within 10 s")
    await stop(1)
  }
  await new Promise((resolve) => setTimeout(resolve, 100))
}
const deadline = seconds === undefined ? Infinity : Date.now() + seconds * 1000
let last
let refreshes = 0
console.log(`\nReading the token as a script would: curl --unix-socket ${socket} http://localhost/token`)
console.log("(Ctrl-C stops the demo)\n")
while (!state.stopping && Date.now() < deadline) {
  const { body, status } = await getSocket("/token")
  const health = await getSocket("/health")
  if (status === 200) {
    const info = JSON.parse(health.body)
    const note = last === undefined ? "first token" : body !== last ? "REFRESHED: a new token" : "same token"
    if (last !== undefined && body !== last) refreshes++
    console.log(
      `  ${new Date().toISOString().slice(11, 19)}  GET /token → ${show(body)}  (${note}; expires ` +
        `${new Date(info.expires_at * 1000).toISOString().slice(11, 19)}, next refresh ` +
        `${String(info.next_refresh_at).slice(11, 19)})`
    )
    last = body
  } else if (status !== 0) console.log(`  GET /token → ${status} ${body}`)
  await new Promise((resolve) => setTimeout(resolve, Math.min(5000, Math.max(0, deadline - Date.now()))))
}
console.log(`\nDone: ${refreshes} refresh(es) seen on the socket.`)
await stop(refreshes > 0 || seconds === undefined ? 0 : 1)
