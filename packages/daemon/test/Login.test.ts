// `strava-auth login`'s loopback server against login CSRF, black-box: the real command against the mock
// Strava on 127.0.0.1, with the browser's part played by fetch (Browser.test.ts plays it in Chromium).
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

import { assert, describe, it } from "@effect/vitest"
import { MockServer, Simulator } from "@strava-auth/testing"
import * as Effect from "effect/Effect"

import {
  collect,
  decide,
  eventually,
  fakeOpener,
  firstLine,
  keyOf,
  login,
  sandbox,
  start,
  startAddress,
  visitStart
} from "./harness.js"

/** Control characters a terminal acts on (C0 but newline, DEL, C1), which nothing `login` prints may carry. */

const controls = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/

describe("strava-auth login: the start address", () => {
  it.scopedLive("the browser opener gets only a file:// page (0600, in a 0700 directory): no key, no state on its argv", () =>
    Effect.gen(function*() {
      const { server } = yield* MockServer.make()
      const box = sandbox(server)
      const opener = fakeOpener(box.dir)
      const child = start(["login"], { ...box.env, PATH: `${opener.bin}:${box.env["PATH"]}`, DISPLAY: ":99" })
      const result = collect(child)
      child.stdin!.end()
      const startUrl = yield* Effect.promise(() => firstLine(child))
      const key = keyOf(startUrl)
      const argv = yield* eventually(
        async () => Fs.existsSync(opener.argvFile) ? Fs.readFileSync(opener.argvFile, "utf8") : undefined,
        10_000,
        "the opener to run"
      )
      const args = argv.trimEnd().split("\n")
      assert.strictEqual(args.length, 1)
      assert.match(args[0]!, /^file:\/\/\/.*\/start\.html$/)
      assert.notInclude(argv, key)
      assert.notInclude(argv, "127.0.0.1")
      // the page: readable by this user only, in a directory of its own, and it sends the browser on
      const file = fileURLToPath(args[0]!)
      assert.strictEqual(Fs.lstatSync(file).mode & 0o777, 0o600)
      assert.isTrue(Fs.lstatSync(Path.dirname(file)).isDirectory())
      assert.strictEqual(Fs.lstatSync(Path.dirname(file)).mode & 0o777, 0o700)
      const html = Fs.readFileSync(file, "utf8")
      assert.include(html, `<meta http-equiv="refresh" content="0;url=${startUrl}">`)
      assert.include(html, `href="${startUrl}"`)
      // the state exists only behind the start address
      const { authorizeUrl, cookie } = yield* Effect.promise(() => visitStart(startUrl))
      const state = new URL(authorizeUrl).searchParams.get("state")!
      assert.lengthOf(state, 43)
      assert.notInclude(argv, state)
      const location = yield* Effect.promise(() => decide(server, authorizeUrl))
      const page = yield* Effect.promise(() => fetch(location, { headers: { cookie } }))
      assert.strictEqual(page.status, 200)
      const { code, stderr, stdout } = yield* Effect.promise(() => result)
      assert.strictEqual(code, 0, stderr)
      assert.strictEqual(stdout, `${startUrl}\n`)
      assert.notInclude(stderr, key)
      assert.notInclude(stderr + stdout, state)
      // the page and its directory are gone with the login
      assert.isFalse(Fs.existsSync(Path.dirname(file)))
    }))

  it.scopedLive("the victim's flow: start address, Strava, the redirect with the cookie; the token file is written", () =>
    Effect.gen(function*() {
      const { server } = yield* MockServer.make()
      const box = sandbox(server)
      const child = start(["login", "--no-browser"], box.env)
      const result = collect(child)
      child.stdin!.end()
      const startUrl = yield* Effect.promise(() => firstLine(child))
      assert.match(startUrl, startAddress)
      const port = startUrl.match(startAddress)![1]
      const { authorizeUrl, cookie, setCookie } = yield* Effect.promise(() => visitStart(startUrl))
      assert.isTrue(authorizeUrl.startsWith(`${server.url}/oauth/authorize?`))
      assert.include(authorizeUrl, `redirect_uri=http%3A%2F%2F127.0.0.1%3A${port}%2Fauthorization`)
      assert.match(cookie, new RegExp(`^strava_auth_login_${port}=[A-Za-z0-9_-]{43}$`))
      const attributes = setCookie.split(";").slice(1).map((a) => a.trim().toLowerCase())
      assert.sameMembers(attributes, ["httponly", "samesite=lax", "path=/"])
      const location = yield* Effect.promise(() => decide(server, authorizeUrl))
      const page = yield* Effect.promise(() => fetch(location, { headers: { cookie } }))
      assert.strictEqual(page.status, 200)
      assert.include(yield* Effect.promise(() => page.text()), "Logged in as Marianne Mock")
      const { code, stderr } = yield* Effect.promise(() => result)
      assert.strictEqual(code, 0, stderr)
      assert.include(stderr, "Logged in as Marianne Mock")
      assert.notInclude(stderr, keyOf(startUrl))
      assert.strictEqual(JSON.parse(Fs.readFileSync(box.tokenFile, "utf8")).athlete.id, Simulator.defaultAthlete.id)
    }))

  it.scopedLive("a redirect with the right state but without the cookie is refused (400) and the login keeps waiting", () =>
    Effect.gen(function*() {
      const { server } = yield* MockServer.make()
      const box = sandbox(server)
      const child = start(["login", "--no-browser"], box.env)
      const result = collect(child)
      child.stdin!.end()
      const startUrl = yield* Effect.promise(() => firstLine(child))
      const { authorizeUrl, cookie } = yield* Effect.promise(() => visitStart(startUrl))
      const location = yield* Effect.promise(() => decide(server, authorizeUrl))
      assert.include(location, `state=${new URL(authorizeUrl).searchParams.get("state")}`)
      for (const headers of [{}, { cookie: `${cookie.split("=")[0]}=${"A".repeat(43)}` }]) {
        const refused = yield* Effect.promise(() => fetch(location, { headers }))
        assert.strictEqual(refused.status, 400)
        assert.include(yield* Effect.promise(() => refused.text()), "does not belong to this login")
      }
      assert.isNull(child.exitCode)
      assert.isFalse(Fs.existsSync(box.tokenFile))
      // the same redirect from the browser that has the cookie still completes the login
      const page = yield* Effect.promise(() => fetch(location, { headers: { cookie } }))
      assert.strictEqual(page.status, 200)
      const { code, stderr } = yield* Effect.promise(() => result)
      assert.strictEqual(code, 0, stderr)
      assert.include(stderr, "Refused a redirect")
      assert.isTrue(Fs.existsSync(box.tokenFile))
    }))

  it.scopedLive("a second visit to the start address stops the login with a clear message and a non-zero exit", () =>
    Effect.gen(function*() {
      const { server } = yield* MockServer.make()
      const box = sandbox(server)
      const child = start(["login", "--no-browser"], box.env)
      const result = collect(child)
      child.stdin!.end()
      const startUrl = yield* Effect.promise(() => firstLine(child))
      const first = yield* Effect.promise(() => visitStart(startUrl))
      const second = yield* Effect.promise(() => fetch(startUrl, { redirect: "manual" }))
      assert.strictEqual(second.status, 409)
      assert.isNull(second.headers.get("location"))
      assert.isNull(second.headers.get("set-cookie"))
      assert.include(yield* Effect.promise(() => second.text()), "was opened a second time")
      const { code, stderr } = yield* Effect.promise(() => result)
      assert.strictEqual(code, 1)
      assert.include(stderr, `start address ${startUrl.split("?")[0]} was opened a second time`)
      assert.notInclude(stderr, keyOf(startUrl))
      // whoever holds the cookie can no longer finish it
      const location = yield* Effect.promise(() => decide(server, first.authorizeUrl))
      const late = yield* Effect.promise(() =>
        fetch(location, { headers: { cookie: first.cookie } }).then(() => "answered", () => "refused")
      )
      assert.strictEqual(late, "refused")
      assert.isFalse(Fs.existsSync(box.tokenFile))
    }))
  it.scopedLive("/start without this login's key: a 403 that neither starts nor stops the login; the key holder finishes it", () =>
    Effect.gen(function*() {
      const { server } = yield* MockServer.make()
      const box = sandbox(server)
      const child = start(["login", "--no-browser"], box.env)
      const result = collect(child)
      child.stdin!.end()
      const startUrl = yield* Effect.promise(() => firstLine(child))
      const key = keyOf(startUrl)
      const bare = startUrl.split("?")[0]!
      // another user who found the port: no key, a wrong one, a truncated one, the key under another name
      for (
        const probe of [
          bare,
          `${bare}?key=`,
          `${bare}?key=${"A".repeat(43)}`,
          `${bare}?key=${key.slice(0, 42)}`,
          `${bare}?k=${key}`
        ]
      ) {
        const reply = yield* Effect.promise(() => fetch(probe, { redirect: "manual" }))
        assert.strictEqual(reply.status, 403, probe)
        assert.isNull(reply.headers.get("location"))
        assert.isNull(reply.headers.get("set-cookie"))
        assert.include(yield* Effect.promise(() => reply.text()), "not this login")
      }
      assert.isNull(child.exitCode)
      // the one visit is still the key holder's, and completes the login
      const { authorizeUrl, cookie } = yield* Effect.promise(() => visitStart(startUrl))
      const location = yield* Effect.promise(() => decide(server, authorizeUrl))
      const page = yield* Effect.promise(() => fetch(location, { headers: { cookie } }))
      assert.strictEqual(page.status, 200)
      const { code, stderr } = yield* Effect.promise(() => result)
      assert.strictEqual(code, 0, stderr)
      assert.match(stderr, /a request to \/start without this login's key was refused/i)
      assert.notInclude(stderr, key)
      assert.strictEqual(JSON.parse(Fs.readFileSync(box.tokenFile, "utf8")).athlete.id, Simulator.defaultAthlete.id)
    }))

  it.scopedLive("a stop while the code's exchange is on its way: Strava's answer arrives afterwards and nothing is written", () =>
    Effect.gen(function*() {
      const { mock, server } = yield* MockServer.make()
      const box = sandbox(server)
      const child = start(["login", "--no-browser"], box.env)
      const result = collect(child)
      child.stdin!.end()
      const startUrl = yield* Effect.promise(() => firstLine(child))
      const { authorizeUrl, cookie } = yield* Effect.promise(() => visitStart(startUrl))
      const location = yield* Effect.promise(() => decide(server, authorizeUrl))
      // Strava answers the exchange after 600 ms: well before the login's server is closed (up to a second)
      yield* mock.inject({ endpoint: "token", fault: { _tag: "Slow", millis: 600 }, when: { times: 1 } })
      const before = (yield* mock.log).length
      const callback = fetch(location, { headers: { cookie } }).then((r) => r.status, () => "closed")
      yield* eventually(
        async () => (await Effect.runPromise(mock.log)).slice(before).some((e) => e.endpoint === "token") || undefined,
        10_000,
        "the exchange to reach Strava"
      )
      const second = yield* Effect.promise(() => fetch(startUrl, { redirect: "manual" }))
      assert.strictEqual(second.status, 409)
      const { code, stderr } = yield* Effect.promise(() => result)
      assert.strictEqual(code, 1)
      assert.include(stderr, "was opened a second time")
      assert.include(stderr, "nothing was saved")
      yield* Effect.promise(() => callback)
      // Strava did answer (the grant exists there), but the login wrote nothing
      const exchanged = (yield* mock.log).slice(before).filter((e) => e.endpoint === "token")
      assert.lengthOf(exchanged, 1)
      assert.isFalse(Fs.existsSync(box.tokenFile))
      const state = Path.dirname(box.tokenFile)
      assert.deepStrictEqual(Fs.existsSync(state) ? Fs.readdirSync(state).filter((f) => !f.endsWith(".lock")) : [], [])
    }))
})

describe("strava-auth login --manual", () => {
  it.scopedLive("prints the authorize URL with its state on stdout only, and opens no browser", () =>
    Effect.gen(function*() {
      const { server } = yield* MockServer.make()
      const box = sandbox(server)
      const opener = fakeOpener(box.dir)
      const child = start(["login", "--manual"], {
        ...box.env,
        PATH: `${opener.bin}:${box.env["PATH"]}`,
        DISPLAY: ":99"
      })
      const result = collect(child)
      const url = yield* Effect.promise(() => firstLine(child))
      const state = new URL(url).searchParams.get("state")!
      assert.lengthOf(state, 43)
      child.stdin!.end("\n") // nothing pasted
      const { code, stderr } = yield* Effect.promise(() => result)
      assert.strictEqual(code, 64)
      assert.notInclude(stderr, state)
      assert.include(stderr, "printed above (on stdout)")
      assert.isFalse(Fs.existsSync(opener.argvFile))
    }))
})

describe("strava-auth login: text from Strava on the terminal", () => {
  it.scopedLive("an athlete name with escape sequences and control characters is printed without them", () =>
    Effect.gen(function*() {
      const { server } = yield* MockServer.make({
        athletes: [{
          ...Simulator.defaultAthlete,
          firstname: "\x1b]0;owned\x07Mari\x1b[2J\x1b[31manne",
          lastname: "\x9b1;1HMo\x1b(0ck\r\n\x00"
        }]
      })
      const box = sandbox(server)
      const { page, result } = yield* login(box, server)
      assert.strictEqual(result.code, 0, result.stderr)
      assert.include(result.stderr, `Logged in as Marianne Mock (scopes read,activity:read); token saved`)
      assert.notMatch(result.stderr, controls)
      assert.notMatch(result.stdout, controls)
      assert.include(page.text, "Logged in as Marianne Mock")
    }))

  it.scopedLive("an error from the redirect is printed without escape sequences", () =>
    Effect.gen(function*() {
      const { server } = yield* MockServer.make()
      const box = sandbox(server)
      const child = start(["login", "--no-browser"], box.env)
      const result = collect(child)
      child.stdin!.end()
      const startUrl = yield* Effect.promise(() => firstLine(child))
      const { authorizeUrl, cookie } = yield* Effect.promise(() => visitStart(startUrl))
      const query = new URL(authorizeUrl).searchParams
      const redirect = new URL(query.get("redirect_uri")!)
      redirect.search = new URLSearchParams({
        state: query.get("state")!,
        error: "\x1b[2J\x1b]0;x\x07server_error\x9b"
      })
        .toString()
      const page = yield* Effect.promise(() => fetch(redirect, { headers: { cookie } }))
      assert.strictEqual(page.status, 403)
      const { code, stderr } = yield* Effect.promise(() => result)
      assert.strictEqual(code, 77)
      assert.match(stderr, /Strava answered the authorization with error "[^"]*server_error[^"]*"/)
      assert.notMatch(stderr, controls)
    }))
})
