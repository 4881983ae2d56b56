// The example web app as an operator runs it (the build, configured by its environment, DATABASE_URL given),
// driven in a real Chromium against the mock Strava server.
import * as ChildProcess from "node:child_process"

import { assert, describe, it } from "@effect/vitest"
import * as PushSubscription from "@strava-auth/core/PushSubscription"
import * as StravaOAuth from "@strava-auth/core/StravaOAuth"
import { Simulator } from "@strava-auth/testing"
import { launch } from "@strava-auth/testing/Chromium"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"

import {
  appEnv,
  connectThroughApp,
  exampleMain,
  freshDatabase,
  mockServer,
  oauthAgainst,
  startReplica
} from "./fixtures.js"

const athletes = Simulator.makeAthletes(3, 8001).map((a, i) => ({ ...a, firstname: ["Ada", "Bea", "Cy"][i]! }))

const setup = Effect.gen(function*() {
  const { mock, server } = yield* mockServer({ athletes })
  const database = yield* freshDatabase
  const app = yield* startReplica(appEnv(server, mock, database))
  return { app, mock, server }
})

describe("the example web app in a real browser", () => {
  it.live(
    "connect two athletes through Strava's page: both are listed, and each one's profile is served",
    () =>
      Effect.gen(function*() {
        const { app } = yield* setup
        const browser = yield* launch
        // Each athlete in a browser of their own. (The mock treats its first athlete as the one signed in to
        // Strava: once 8001 has granted, approval_prompt=auto lets that athlete through without the page, so 8002
        // connects first.)
        const connectAs = (athleteId: number) =>
          Effect.promise(async () => {
            const page = await (await browser.newContext()).newPage()
            await page.goto(app.url)
            await page.click("#connect")
            // Strava's (the mock's) authorize page: choose who signs in, then Authorize.
            await page.waitForSelector("#athlete-select")
            await page.selectOption("#athlete-select", String(athleteId))
            await Promise.all([page.waitForURL(`${app.url}/`), page.click("#authorize")])
            return page
          })
        yield* connectAs(8002)
        const page = yield* connectAs(8001)
        const listed = yield* Effect.promise(() =>
          page.$$eval("#athletes li", (items) => items.map((li) => li.getAttribute("data-athlete-id")))
        )
        assert.deepStrictEqual([...listed].sort(), ["8001", "8002"])
        assert.strictEqual(yield* Effect.promise(() => page.textContent("#count")), "2 athletes connected.")
        const names = yield* Effect.promise(() => page.textContent("#athletes"))
        assert.include(names, "Ada")
        assert.include(names, "Bea")
        // The profile link serves Strava's GET /athlete with that athlete's own token.
        const profile = yield* Effect.promise(async () => {
          await page.click(`li[data-athlete-id="8002"] a`)
          return JSON.parse((await page.textContent("body")) ?? "{}") as { id: number; firstname: string }
        })
        assert.strictEqual(profile.id, 8002)
        assert.strictEqual(profile.firstname, "Bea")
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )

  it.live(
    "Cancel on Strava's page comes back to a page that says nothing was stored and offers to connect again",
    () =>
      Effect.gen(function*() {
        const { app } = yield* setup
        const browser = yield* launch
        const page = yield* Effect.promise(() => browser.newPage())
        const text = yield* Effect.promise(async () => {
          await page.goto(app.url)
          await page.click("#connect")
          await page.waitForSelector("#cancel")
          await Promise.all([page.waitForURL(/\/strava\/callback/), page.click("#cancel")])
          return (await page.textContent("body")) ?? ""
        })
        assert.include(text, "You did not connect your Strava account")
        assert.include(text, "Nothing was stored")
        assert.include(text, "Connect with Strava again")
        const home = yield* Effect.promise(async () => {
          await page.goto(app.url)
          return page.textContent("#count")
        })
        assert.strictEqual(home, "0 athletes connected.")
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )

  it.live(
    "bad configuration: one line that says what to fix, exit 78, and no secret repeated",
    () =>
      Effect.gen(function*() {
        const runMain = (env: Record<string, string>) =>
          Effect.promise(() =>
            new Promise<{ code: number | null; stderr: string; stdout: string }>((resolve) => {
              const child = ChildProcess.spawn(process.execPath, [exampleMain], {
                env: { PATH: process.env["PATH"] ?? "", TMPDIR: process.env["TMPDIR"] ?? "/tmp", ...env },
                stdio: ["ignore", "pipe", "pipe"]
              })
              let stderr = ""
              let stdout = ""
              child.stderr!.on("data", (d) => (stderr += String(d)))
              child.stdout!.on("data", (d) => (stdout += String(d)))
              child.once("exit", (code) => resolve({ code, stderr, stdout }))
            })
          )
        const base = {
          STRAVA_CLIENT_ID: "12345",
          STRAVA_CLIENT_SECRET: "a-secret-that-must-not-show",
          STRAVA_WEBHOOK_VERIFY_TOKEN: "verify-token-for-tests",
          DATABASE_URL: "postgres://u:a-password-that-must-not-show@127.0.0.1:1/db",
          PORT: "0"
        }
        const cases: ReadonlyArray<readonly [Record<string, string>, string]> = [
          [{ ...base, STRAVA_CLIENT_ID: "" }, "STRAVA_CLIENT_ID"],
          [{ ...base, STRAVA_WEBHOOK_VERIFY_TOKEN: "" }, "STRAVA_WEBHOOK_VERIFY_TOKEN"],
          [{ ...base, DATABASE_URL: "mysql://u:a-password-that-must-not-show@h/db" }, "must start with postgres://"],
          [{ ...base, PORT: "99999" }, "PORT must be 0 to 65535"],
          [{ ...base, STRAVA_AUTH_REFRESH_MARGIN: "soon" }, "STRAVA_AUTH_REFRESH_MARGIN"],
          [{ ...base, STRAVA_AUTH_ENCRYPTION_KEY: "short" }, "not 32 bytes of base64"],
          [base, "the database did not answer"]
        ]
        for (const [env, expected] of cases) {
          const result = yield* runMain(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== "")))
          assert.strictEqual(result.code, 78, `${expected}: ${result.stderr}`)
          assert.include(result.stderr, expected)
          assert.strictEqual(result.stdout, "")
          assert.notInclude(result.stderr, "a-secret-that-must-not-show")
          assert.notInclude(result.stderr, "a-password-that-must-not-show")
        }
      }),
    { timeout: 60_000 }
  )

  it.live(
    "past the app's athlete cap Strava refuses a new athlete on its own page; the app's page shows the count",
    () =>
      Effect.gen(function*() {
        const { mock, server } = yield* mockServer({ athletes, athleteCap: 1 })
        const app = yield* startReplica(appEnv(server, mock, yield* freshDatabase))
        const browser = yield* launch
        const result = yield* Effect.promise(async () => {
          const first = await (await browser.newContext()).newPage()
          await first.goto(app.url)
          await first.click("#connect")
          await first.selectOption("#athlete-select", "8003")
          await Promise.all([first.waitForURL(`${app.url}/`), first.click("#authorize")])
          // Another athlete (the mock's signed-in one, 8001, not connected): Strava refuses on its own page.
          const second = await (await browser.newContext()).newPage()
          await second.goto(app.url)
          await second.click("#connect")
          await second.waitForLoadState()
          return {
            url: second.url(),
            text: (await second.textContent("body")) ?? "",
            count: await first.reload().then(() => first.textContent("#count"))
          }
        })
        assert.include(result.text, "Limit of connected athletes exceeded")
        assert.isTrue(result.url.startsWith(server.url), "the athlete stays on Strava's page")
        assert.strictEqual(result.count, "1 athlete connected.")
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )

  it.live(
    "Strava's deauthorization event, delivered to one replica, removes the grant for all within 2 seconds",
    () =>
      Effect.gen(function*() {
        const { mock, server } = yield* mockServer({ athletes })
        const env = appEnv(server, mock, yield* freshDatabase)
        const a = yield* startReplica(env)
        const b = yield* startReplica(env)
        // The subscription points at replica A (Strava validates it there).
        const oauth = yield* oauthAgainst(server, mock)
        const subscribed = yield* PushSubscription.create({
          callbackUrl: `${a.url}/strava/webhook`,
          verifyToken: Redacted.make("verify-token-for-tests")
        }).pipe(Effect.provideService(StravaOAuth.StravaOAuth, oauth), Effect.orDie)
        assert.isTrue(subscribed.created)
        // An athlete connects through replica B and is served by both.
        yield* connectThroughApp(b.url, mock, 8001)
        for (const replica of [a, b]) {
          assert.strictEqual((yield* Effect.promise(() => fetch(`${replica.url}/athletes/8001`))).status, 200)
        }
        // The athlete revokes the app on strava.com: Strava posts the event to replica A.
        const revokedAt = Date.now()
        yield* mock.revokeAthlete(8001)
        let gone = false
        while (!gone && Date.now() - revokedAt < 2000) {
          gone = (yield* Effect.promise(() => fetch(`${b.url}/athletes/8001`))).status === 404
          if (!gone) yield* Effect.sleep("25 millis")
        }
        assert.isTrue(gone, "replica B still serves the athlete 2 s after the event")
        assert.strictEqual((yield* Effect.promise(() => fetch(`${a.url}/athletes/8001`))).status, 404)
        const delivered = (yield* mock.deliveries).filter((d) => d.status === 200)
        assert.strictEqual(delivered.length, 1)
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )

  it.live(
    "the app's rate budget spent: /athletes/:id answers 429 with Retry-After and Strava is not called",
    () =>
      Effect.gen(function*() {
        const limits = { overall: { fifteenMinutes: 1000, daily: 10000 }, read: { fifteenMinutes: 3, daily: 1000 } }
        const { mock, server } = yield* mockServer({ athletes, rateLimits: limits })
        const app = yield* startReplica(appEnv(server, mock, yield* freshDatabase))
        yield* connectThroughApp(app.url, mock, 8001)
        const statuses: Array<number> = []
        let retryAfter: string | null = null
        for (let i = 0; i < 5; i++) {
          const response = yield* Effect.promise(() => fetch(`${app.url}/athletes/8001`))
          statuses.push(response.status)
          if (response.status === 429) retryAfter = response.headers.get("retry-after")
        }
        assert.deepStrictEqual(statuses, [200, 200, 200, 429, 429])
        const seconds = Number(retryAfter)
        assert.isTrue(seconds >= 1 && seconds <= 15 * 60, `Retry-After ${retryAfter}: until the quarter hour ends`)
        assert.strictEqual((yield* mock.log).filter((e) => e.endpoint === "athlete").length, 3)
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )

  it.live(
    "Strava's own 429 (which has no Retry-After) is answered 429 with Retry-After from the window's end",
    () =>
      Effect.gen(function*() {
        const { mock, server } = yield* mockServer({ athletes })
        const app = yield* startReplica(appEnv(server, mock, yield* freshDatabase))
        assert.strictEqual(yield* connectThroughApp(app.url, mock, 8001), 303)
        yield* mock.inject({ endpoint: "athlete", fault: { _tag: "RateLimited" }, when: { times: 1 } })
        const response = yield* Effect.promise(() => fetch(`${app.url}/athletes/8001`))
        assert.strictEqual(response.status, 429)
        const seconds = Number(response.headers.get("retry-after"))
        assert.isTrue(seconds >= 1 && seconds <= 24 * 3600, `Retry-After ${response.headers.get("retry-after")}`)
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )
})
