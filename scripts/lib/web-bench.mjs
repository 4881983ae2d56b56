// The web app package beside its baselines, in one run:
// - `GET /athletes/:id` through the example app (the build, as a replica runs: HTTP in, the athlete's row,
//   Strava's API through the rate budget) vs `GET /api/v3/athlete` at the mock with a known token, the same
//   client (fetch, keep-alive) for both, alternating blocks, medians of per-request times; once with the mock
//   answering at once (the app's own cost laid bare) and once answering after 100 ms, as Strava does;
// - `Athletes.tokenFor` on a warm grant in one process (re-read of the row + the engine) vs the same
//   primary-key SELECT alone on the same pool: per-replica throughput, 16 callers at once.
// The mock Strava and an embedded PostgreSQL run in this process's session directory.
import * as Fs from "node:fs"
import * as Path from "node:path"

import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { Database, EmbeddedPostgres, StravaServer } from "@strava-auth/server"
import { Athletes } from "@strava-auth/server/Athletes"
import { MockServer, Simulator } from "@strava-auth/testing"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"

import { firstLine, root } from "./session.mjs"

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

const unlimited = { fifteenMinutes: 1e9, daily: 1e9 }

export const run = async (s, iterations) => {
  const scope = Effect.runSync(Scope.make())
  const inScope = (effect) => Effect.runPromise(Scope.extend(effect, scope))
  try {
    const athletes = Simulator.makeAthletes(1, 4242)
    const { mock, server } = await inScope(
      MockServer.make({ athletes, rateLimits: { overall: unlimited, read: unlimited } })
    )
    const pgDir = Path.join(s.dir, "bench-pg")
    if (process.getuid?.() === 0) Fs.chmodSync(s.dir, 0o711)
    const pg = await inScope(EmbeddedPostgres.start(pgDir, { persistent: false }))
    const env = {
      DATABASE_URL: Redacted.value(pg.url),
      PORT: "0",
      STRAVA_CLIENT_ID: mock.app.clientId,
      STRAVA_CLIENT_SECRET: mock.app.clientSecret,
      STRAVA_BASE_URL: server.url,
      STRAVA_API_URL: server.apiUrl,
      STRAVA_WEBHOOK_VERIFY_TOKEN: "bench-verify-token"
    }
    const app = s.start([Path.join(root, "packages/server/build/example/main.js")], env)
    const appUrl = (await firstLine(app.stdout)).replace(/^listening on /, "")

    // One athlete connects through the app (the connect route, Strava's page, the callback).
    const start = await fetch(`${appUrl}/strava/connect`, { redirect: "manual" })
    const cookie = start.headers.getSetCookie()[0].split(";")[0]
    const callback = new URL(await Effect.runPromise(mock.approve(start.headers.get("location"), { athleteId: 4242 })))
    const done = await fetch(`${appUrl}${callback.pathname}${callback.search}`, {
      headers: { cookie },
      redirect: "manual"
    })
    if (done.status !== 303) throw new Error(`connect failed: ${done.status}`)

    // The per-replica services in this process, on the same database: the known token, and tokenFor.
    const runtime = ManagedRuntime.make(
      StravaServer.layer({
        config: {
          clientId: mock.app.clientId,
          clientSecret: mock.app.clientSecret,
          baseUrl: server.url,
          apiUrl: server.apiUrl
        }
      }).pipe(Layer.provideMerge(Layer.merge(Database.layerPg(pg.url), FetchHttpClient.layer)))
    )
    const athletesService = await runtime.runPromise(Athletes)
    const sql = await runtime.runPromise(SqlClient.SqlClient)
    const token = Redacted.value(await runtime.runPromise(athletesService.tokenFor(4242)))

    const viaApp = () => fetch(`${appUrl}/athletes/4242`).then((r) => r.text())
    const direct = () =>
      fetch(`${server.apiUrl}/athlete`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.text())
    const time = async (f, n) => {
      const out = []
      for (let i = 0; i < n; i++) {
        const t0 = performance.now()
        await f()
        out.push(performance.now() - t0)
      }
      return out
    }
    await time(viaApp, 20)
    await time(direct, 20)
    const http = { app: [], direct: [] }
    for (let round = 0; round < 5; round++) {
      http.app.push(...(await time(viaApp, iterations)))
      http.direct.push(...(await time(direct, iterations)))
    }
    // The same with Strava's own latency: the mock answers the API after 100 ms (real Strava: 100-300 ms),
    // for both sides alike.
    await Effect.runPromise(mock.inject({
      endpoint: "athlete",
      fault: { _tag: "Slow", millis: 100, processed: true },
      when: { probability: 1 }
    }))
    const slow = { app: [], direct: [] }
    for (let round = 0; round < 3; round++) {
      slow.app.push(...(await time(viaApp, Math.ceil(iterations / 20))))
      slow.direct.push(...(await time(direct, Math.ceil(iterations / 20))))
    }
    await Effect.runPromise(mock.clearFaults)

    // tokenFor vs the SELECT it starts with, in-process: throughput with 16 callers at once, alternating blocks.
    const tokenFor = () => runtime.runPromise(athletesService.tokenFor(4242))
    const select = () => runtime.runPromise(sql`SELECT access_token FROM strava_grants WHERE athlete_id = ${4242}`)
    const throughput = async (f, millis) => {
      let calls = 0
      const until = performance.now() + millis
      await Promise.all(Array.from({ length: 16 }, async () => {
        while (performance.now() < until) {
          await f()
          calls++
        }
      }))
      return (calls * 1000) / millis
    }
    await throughput(tokenFor, 300)
    await throughput(select, 300)
    const inProcess = { tokenFor: [], select: [] }
    for (let round = 0; round < 5; round++) {
      inProcess.tokenFor.push(await throughput(tokenFor, iterations * 5))
      inProcess.select.push(await throughput(select, iterations * 5))
    }
    await runtime.dispose()
    app.kill("SIGTERM")
    await new Promise((resolve) => app.once("exit", resolve))
    return {
      athlete: { app: median(http.app), direct: median(http.direct) },
      athleteAtStravaLatency: { app: median(slow.app), direct: median(slow.direct) },
      tokenFor: { ours: median(inProcess.tokenFor), select: median(inProcess.select) } // calls per second
    }
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}
