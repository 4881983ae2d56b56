#!/usr/bin/env node
// `pnpm start:web`: the example web app for many athletes, with no Strava account and nothing installed.
//
// 1. starts the mock Strava (@strava-auth/testing) with a few athletes to sign in as,
// 2. starts the example app (`pnpm web-app`) against it, on an embedded PostgreSQL in a scratch directory,
// 3. prints where to click. Connect as one athlete, then another: both are listed.
//
// Ctrl-C stops everything and removes the scratch directory. Options: --seconds N (stop by itself after N
// seconds), --port N (the app's port; default 0, any free port).
import * as Fs from "node:fs"
import * as Path from "node:path"
import { parseArgs } from "node:util"

import { envFor, firstLine, root, session, startMock, stopOnSignals } from "./lib/session.mjs"

const { values } = parseArgs({ options: { seconds: { type: "string" }, port: { type: "string", default: "0" } } })
const seconds = values.seconds === undefined ? undefined : Number(values.seconds)
if ((seconds !== undefined && !(seconds > 0)) || !/^\d+$/.test(values.port)) {
  console.error("usage: node scripts/start-web.mjs [--seconds N] [--port N]")
  process.exit(64)
}

// The demo's own settings only: an operator's DATABASE_URL (or key, or secret file) in this shell must not
// send the mock's grants to a real database.
for (
  const name of [
    "DATABASE_URL",
    "PUBLIC_URL",
    "HOST",
    "STRAVA_AUTH_ENCRYPTION_KEY",
    "STRAVA_AUTH_REFRESH_MARGIN",
    "STRAVA_CLIENT_SECRET_FILE",
    "STRAVA_WEBHOOK_SUBSCRIPTION_ID"
  ]
) delete process.env[name]

const s = session("web")
// As root the embedded PostgreSQL runs as `postgres`, which must pass through the scratch directory.
if (process.getuid?.() === 0) Fs.chmodSync(s.dir, 0o711)
const { state, stop } = stopOnSignals(s)

const baseUrl = await startMock(s, ["--athletes", "5"])
console.log(`mock Strava:  ${baseUrl}  (5 athletes to sign in as; choose one on its authorize page)`)
const { STRAVA_AUTH_SOCKET: _socket, STRAVA_AUTH_TOKEN_FILE: _file, ...env } = envFor(s, baseUrl)
const app = s.start([Path.join(root, "packages/server/build/example/main.js")], {
  ...env,
  PORT: values.port,
  STRAVA_AUTH_DATA_DIR: Path.join(s.dir, "postgres"),
  STRAVA_WEBHOOK_VERIFY_TOKEN: "example-verify-token"
})
app.stderr.on("data", (d) => process.stderr.write(`  app | ${d}`.replace(/\n(?=.)/g, "\n  app | ")))
app.once("exit", (code) => {
  if (!state.stopping) {
    console.error(`the example app exited (${code})`)
    stop(1)
  }
})
const line = await firstLine(app.stdout)
const url = line.replace(/^listening on /, "")
console.log(`example app:  ${url}  (embedded PostgreSQL in ${Path.join(s.dir, "postgres")})`)
console.log(`\nOpen ${url} and press "Connect with Strava". Ctrl-C stops everything.`)
if (seconds !== undefined) setTimeout(() => stop(0), seconds * 1000)
