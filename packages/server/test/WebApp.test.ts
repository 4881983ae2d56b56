// The example web app as an operator runs it (the build, configured by its environment, DATABASE_URL given),
// driven in a real Chromium against the mock Strava server.
import { assert, describe, it } from "@effect/vitest"
import { MockServer, MockStrava, Simulator } from "@strava-auth/testing"
import { launch } from "@strava-auth/testing/Chromium"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"

import { freshDatabase, startReplica } from "./fixtures.js"

const athletes = Simulator.makeAthletes(3, 8001).map((a, i) => ({ ...a, firstname: ["Ada", "Bea", "Cy"][i]! }))

const setup = Effect.gen(function*() {
  const context = yield* Layer.build(MockServer.layer({ athletes }))
  const server = Context.get(context, MockServer.MockServer)
  const mock = Context.get(context, MockStrava.MockStrava)
  const database = yield* freshDatabase
  const app = yield* startReplica({
    DATABASE_URL: Redacted.value(database),
    PORT: "0",
    STRAVA_CLIENT_ID: mock.app.clientId,
    STRAVA_CLIENT_SECRET: mock.app.clientSecret,
    STRAVA_BASE_URL: server.url,
    STRAVA_API_URL: server.apiUrl,
    STRAVA_WEBHOOK_VERIFY_TOKEN: "verify-token-for-tests"
  })
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
})
