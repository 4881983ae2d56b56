import * as Fs from "node:fs"

import { assert, describe, it } from "@effect/vitest"
import { StravaError } from "@strava-auth/core"
import { MockServer } from "@strava-auth/testing"
import * as Effect from "effect/Effect"

import { collect, eventually, login, sandbox, socketGet, start } from "./harness.js"
import { killHelpersAtEnd } from "./processes.js"

// Black-box: the real `strava-auth daemon` (the esbuild bundle: `pnpm build` first) against the mock Strava
// server on 127.0.0.1.

const health = (socket: string) =>
  socketGet(socket, "/health").then((reply) => (reply._tag === "Reply" ? JSON.parse(reply.body) : undefined))

const inactive = new StravaError.AppInactive({ status: 403 }).message

describe("SIGHUP", () => {
  it.live(
    "after the app was refused (backing off for over 15 s, grant kept), SIGHUP retries at once and the refresh succeeds",
    () =>
      Effect.scoped(Effect.gen(function*() {
        // Tokens live 30 minutes, less than the daemon's 45-minute margin: the grant is always due, so every
        // attempt asks Strava, which mints a new token every time.
        const { mock, server } = yield* MockServer.make({
          accessTokenLifetimeMillis: 30 * 60_000,
          refreshThresholdMillis: 7 * 3_600_000
        })
        const box = sandbox(server)
        yield* killHelpersAtEnd(box.tokenFile)
        yield* login(box, server)
        const old = JSON.parse(Fs.readFileSync(box.tokenFile, "utf8"))
        // The app is refused (Strava: Application/Status/Inactive) from the start: every refresh fails, app-wide.
        yield* mock.setActive(false)
        const child = start(["daemon"], box.env)
        const result = collect(child)
        yield* eventually(
          async () => ((await health(box.socket))?.status === "retrying" ? true : undefined),
          15_000,
          "the daemon's first attempt to be refused"
        )
        // The daemon's own attempts back off (1 s doubling, ± 20 %): wait until the next one is over 15 s away.
        // (Forced POST /refresh calls would not help: during a backoff they ask Strava nothing.)
        const refused = yield* eventually(
          async () => {
            const status = await health(box.socket)
            assert.notStrictEqual(status?.status, "needs_login") // the app is refused, not the grant
            return status?.status === "retrying" && Date.parse(status.next_refresh_at) - Date.now() > 15_000
              ? status
              : undefined
          },
          60_000,
          "the daemon's backoff to grow past 15 s"
        )
        assert.strictEqual(refused.last_error, inactive)
        assert.isAtLeast(refused.consecutive_failures, 4)
        const nextAttempt = Date.parse(refused.next_refresh_at)
        assert.strictEqual(JSON.parse(Fs.readFileSync(box.tokenFile, "utf8")).refresh_token, old.refresh_token)

        // The owner reactivates the app and reloads the daemon: it tries again at once, long before the backoff.
        yield* mock.setActive(true)
        const before = (yield* mock.log).length
        child.kill("SIGHUP")
        const ok = yield* eventually(
          async () => {
            const status = await health(box.socket)
            return status?.status === "ok" ? status : undefined
          },
          10_000,
          "a successful refresh after SIGHUP"
        )
        // Well before the attempt the backoff had planned.
        assert.isBelow(Date.now(), nextAttempt - 3_000, `after SIGHUP, the refresh waited for the backoff`)
        assert.strictEqual(ok.consecutive_failures, 0)
        const refreshes = (yield* mock.log).slice(before).filter((e) => e.grantType === "refresh_token")
        assert.deepStrictEqual(refreshes.map((e) => e.outcome), ["refreshed"])
        const file = JSON.parse(Fs.readFileSync(box.tokenFile, "utf8"))
        assert.strictEqual(file.refresh_token, yield* mock.liveRefreshToken())
        assert.notStrictEqual(file.refresh_token, old.refresh_token)
        child.kill("SIGTERM")
        const ended = yield* Effect.promise(() => result)
        assert.strictEqual(ended.code, 0)
        assert.include(ended.stderr, "SIGHUP: configuration reloaded")
      })),
    { timeout: 120_000 }
  )
})
