import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

import { assert, describe, it } from "@effect/vitest"
import { MockServer } from "@strava-auth/testing"
import * as Effect from "effect/Effect"
import { type Browser, chromium, type Page } from "playwright-core"

import { collect, sandbox, start } from "./harness.js"

// `strava-auth login` driven in a real browser (Debian's Chromium, which .ci/run installs) against the mock
// Strava's authorize page. This test fails, never skips, when Chromium is missing.

const executablePath = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium"
const artifacts = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "../../../test-artifacts")

const launch = Effect.acquireRelease(
  Effect.promise(() => {
    if (!Fs.existsSync(executablePath)) {
      throw new Error(`Chromium is not at ${executablePath}: apt-get install chromium (or set CHROMIUM_PATH)`)
    }
    return chromium.launch({
      executablePath,
      headless: true,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync"
      ]
    })
  }),
  (browser: Browser) => Effect.promise(() => browser.close())
)

const shot = (page: Page, name: string) =>
  Effect.promise(async () => {
    Fs.mkdirSync(artifacts, { recursive: true })
    await page.screenshot({ path: Path.join(artifacts, `login-${name}.png`), fullPage: true })
  })

/** Starts `strava-auth login --no-browser`, opens its URL in Chromium, lets `act` play the athlete. */
const loginInBrowser = (act: (page: Page) => Promise<void>, name: string) =>
  Effect.gen(function*() {
    const { server } = yield* MockServer.make()
    const box = sandbox(server)
    const browser = yield* launch
    const page = yield* Effect.promise(() => browser.newPage())
    const child = start(["login", "--no-browser"], box.env)
    child.stdin!.end()
    const result = collect(child)
    const url = yield* Effect.promise(() =>
      new Promise<string>((resolve, reject) => {
        let out = ""
        child.stdout!.on("data", (d: string) => {
          out += d
          if (out.includes("\n")) resolve(out.split("\n")[0]!)
        })
        child.once("exit", () => reject(new Error("login exited before printing its URL")))
      })
    )
    yield* Effect.promise(() => page.goto(url))
    yield* shot(page, `${name}-authorize`)
    yield* Effect.promise(async () => {
      await act(page)
      await page.waitForURL(/127\.0\.0\.1:\d+\/authorization/)
    })
    yield* shot(page, `${name}-result`)
    const heading = yield* Effect.promise(() => page.textContent("#result"))
    const detail = yield* Effect.promise(() => page.textContent("#detail"))
    return { box, heading: heading ?? "", detail: detail ?? "", result: yield* Effect.promise(() => result) }
  })

describe("login in a real browser", () => {
  it.scopedLive(
    "Authorize: the browser shows who logged in and the command writes the token file",
    () =>
      Effect.gen(function*() {
        const { box, heading, result } = yield* loginInBrowser(async (page) => {
          assert.include(await page.textContent("#app-name"), "strava-auth mock app")
          await page.click("#authorize")
        }, "authorize")
        assert.strictEqual(heading, "Logged in as Marianne Mock")
        assert.strictEqual(result.code, 0, result.stderr)
        assert.isTrue(Fs.existsSync(box.tokenFile))
      }),
    { timeout: 60_000 }
  )

  it.scopedLive("Cancel: a clear denial on both sides", () =>
    Effect.gen(function*() {
      const { box, detail, heading, result } = yield* loginInBrowser((page) => page.click("#cancel"), "cancel")
      assert.strictEqual(heading, "Login failed")
      assert.include(detail, "denied access")
      assert.strictEqual(result.code, 77)
      assert.include(result.stderr, "denied access")
      assert.isFalse(Fs.existsSync(box.tokenFile))
    }), { timeout: 60_000 })

  it.scopedLive("a required scope unticked: a clear message naming it", () =>
    Effect.gen(function*() {
      const { detail, result } = yield* loginInBrowser(async (page) => {
        await page.uncheck("input[value='activity:read']")
        await page.click("#authorize")
      }, "unticked")
      assert.include(detail, "activity:read")
      assert.include(detail, "required")
      assert.strictEqual(result.code, 77)
      assert.include(result.stderr, "activity:read")
    }), { timeout: 60_000 })
})
