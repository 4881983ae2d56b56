import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

import { assert, describe, it } from "@effect/vitest"
import { MockServer } from "@strava-auth/testing"
import { launch } from "@strava-auth/testing/Chromium"
import * as Effect from "effect/Effect"
import type { Page } from "playwright-core"

import { collect, eventually, fakeOpener, firstLine, keyOf, sandbox, start, startAddress } from "./harness.js"

// `strava-auth login` driven in a real browser against the mock Strava's authorize page: the browser opens the
// login's start address (the keyed address `--no-browser` prints, or the private file:// page `login` hands the
// opener), is redirected to Strava with the login's cookie, and follows Strava's redirect back.
//
// The browser: see scripts/chromium.ts (fails, never skips, when there is none).

const artifacts = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "../../../test-artifacts")

const shot = (page: Page, name: string) =>
  Effect.promise(async () => {
    Fs.mkdirSync(artifacts, { recursive: true })
    await page.screenshot({ path: Path.join(artifacts, `login-${name}.png`), fullPage: true })
  })

/**
 * Starts `strava-auth login` and opens it in a fresh browser page: `via: "url"` runs `--no-browser` and goes to
 * the keyed start address it prints; `via: "file"` lets `login` open its browser (a fake `xdg-open` on PATH
 * records the argument) and goes to the file:// page it was given, as the real opener's browser would.
 */
const openLogin = (name: string, via: "url" | "file" = "url") =>
  Effect.gen(function*() {
    const { server } = yield* MockServer.make()
    const box = sandbox(server)
    const browser = yield* launch
    const page = yield* Effect.promise(() => browser.newPage())
    const opener = via === "file" ? fakeOpener(box.dir) : undefined
    const child = opener === undefined
      ? start(["login", "--no-browser"], box.env)
      : start(["login"], { ...box.env, PATH: `${opener.bin}:${box.env["PATH"]}`, DISPLAY: ":99" })
    child.stdin!.end()
    const result = collect(child)
    const startUrl = yield* Effect.promise(() => firstLine(child))
    assert.match(startUrl, startAddress)
    if (opener === undefined) yield* Effect.promise(() => page.goto(startUrl))
    else {
      const argv = yield* eventually(
        async () => Fs.existsSync(opener.argvFile) ? Fs.readFileSync(opener.argvFile, "utf8") : undefined,
        10_000,
        "the opener to run"
      )
      const fileUrl = argv.trimEnd()
      assert.match(fileUrl, /^file:\/\/\/\S+\/start\.html$/)
      assert.notInclude(fileUrl, keyOf(startUrl))
      yield* Effect.promise(async () => {
        await page.goto(fileUrl)
        // the page's refresh sends the browser on to the start address, and from there to Strava
        await page.waitForURL((u) => u.href.startsWith(`${server.url}/oauth/authorize?`))
      })
    }
    yield* shot(page, `${name}-authorize`)
    return { server, box, browser, page, startUrl, result }
  })

/** The login in the browser, with `act` playing the athlete on Strava's page; ends on the login's answer. */
const loginInBrowser = (act: (page: Page) => Promise<void>, name: string, via: "url" | "file" = "url") =>
  Effect.gen(function*() {
    const { box, page, result, server, startUrl } = yield* openLogin(name, via)
    // the start address sent the browser on to Strava, with the login's cookie set for 127.0.0.1
    assert.isTrue(page.url().startsWith(`${server.url}/oauth/authorize?`), page.url())
    const cookies = yield* Effect.promise(() => page.context().cookies(startUrl))
    assert.lengthOf(cookies, 1)
    assert.include(cookies[0]!, { httpOnly: true, sameSite: "Lax", path: "/", domain: "127.0.0.1" })
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

  it.scopedLive(
    "Authorize through the private file:// page the opener is given: the page leads on to Strava and back",
    () =>
      Effect.gen(function*() {
        const { box, heading, result } = yield* loginInBrowser((page) => page.click("#authorize"), "file-page", "file")
        assert.strictEqual(heading, "Logged in as Marianne Mock")
        assert.strictEqual(result.code, 0, result.stderr)
        assert.isTrue(Fs.existsSync(box.tokenFile))
      }),
    { timeout: 60_000 }
  )

  it.scopedLive(
    "the start address without its key (another user who found the port): a 403 page, and the login goes on",
    () =>
      Effect.gen(function*() {
        const { box, browser, page, result, server, startUrl } = yield* openLogin("keyless")
        const other = yield* Effect.promise(() => browser.newContext())
        const probe = yield* Effect.promise(() => other.newPage())
        const reply = yield* Effect.promise(() => probe.goto(startUrl.split("?")[0]!))
        yield* shot(probe, "keyless-result")
        assert.strictEqual(reply?.status(), 403)
        assert.strictEqual(
          yield* Effect.promise(() => probe.textContent("#result")),
          "This address is not this login's"
        )
        assert.lengthOf(yield* Effect.promise(() => other.cookies(startUrl)), 0)
        // the first page, opened with the key, still finishes the login
        assert.isTrue(page.url().startsWith(`${server.url}/oauth/authorize?`), page.url())
        yield* Effect.promise(async () => {
          await page.click("#authorize")
          await page.waitForURL(/127\.0\.0\.1:\d+\/authorization/)
        })
        assert.strictEqual(yield* Effect.promise(() => page.textContent("#result")), "Logged in as Marianne Mock")
        const { code, stderr } = yield* Effect.promise(() => result)
        assert.strictEqual(code, 0, stderr)
        assert.isTrue(Fs.existsSync(box.tokenFile))
      }),
    { timeout: 60_000 }
  )

  it.scopedLive("Cancel: a clear denial on both sides", () =>
    Effect.gen(function*() {
      const { box, detail, heading, result } = yield* loginInBrowser((page) => page.click("#cancel"), "cancel", "file")
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

  it.scopedLive(
    "the start address (with its key) opened a second time (another browser): that page says so and the login stops",
    () =>
      Effect.gen(function*() {
        const { box, browser, result, startUrl } = yield* openLogin("second-visit")
        const other = yield* Effect.promise(() => browser.newContext())
        const page = yield* Effect.promise(() => other.newPage())
        const reply = yield* Effect.promise(() => page.goto(startUrl))
        yield* shot(page, "second-visit-result")
        assert.strictEqual(reply?.status(), 409)
        assert.strictEqual(yield* Effect.promise(() => page.textContent("#result")), "This login was stopped")
        assert.lengthOf(yield* Effect.promise(() => other.cookies(startUrl)), 0)
        const { code, stderr } = yield* Effect.promise(() => result)
        assert.strictEqual(code, 1)
        assert.include(stderr, "was opened a second time")
        assert.isFalse(Fs.existsSync(box.tokenFile))
      }),
    { timeout: 60_000 }
  )
})
