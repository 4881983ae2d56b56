// `strava-auth login`'s loopback server against login CSRF, black-box: the real command against the mock
// Strava on 127.0.0.1, with the browser's part played by fetch (Browser.test.ts plays it in Chromium).
import * as Fs from "node:fs"
import * as Path from "node:path"

import { assert, describe, it } from "@effect/vitest"
import { MockServer, Simulator } from "@strava-auth/testing"
import * as Effect from "effect/Effect"

import { collect, decide, eventually, firstLine, login, sandbox, start, visitStart } from "./harness.js"

/** Control characters a terminal acts on (C0 but newline, DEL, C1), which nothing `login` prints may carry. */

const controls = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/

/** A fake `xdg-open` first on PATH (with a display set, so `login` uses it): records its argv in a file. */
const fakeOpener = (dir: string) => {
  const bin = Path.join(dir, "bin")
  Fs.mkdirSync(bin)
  const argvFile = Path.join(dir, "opener-argv")
  Fs.writeFileSync(
    Path.join(bin, "xdg-open"),
    `#!/bin/sh\nprintf '%s\\n' "$@" > '${argvFile}.tmp' && mv '${argvFile}.tmp' '${argvFile}'\n`,
    { mode: 0o755 }
  )
  return { bin, argvFile }
}

describe("strava-auth login: the start address", () => {
  it.scopedLive("the browser opener gets the start address, with no state on its command line", () =>
    Effect.gen(function*() {
      const { server } = yield* MockServer.make()
      const box = sandbox(server)
      const opener = fakeOpener(box.dir)
      const child = start(["login"], { ...box.env, PATH: `${opener.bin}:${box.env["PATH"]}`, DISPLAY: ":99" })
      const result = collect(child)
      child.stdin!.end()
      const argv = yield* eventually(
        async () => Fs.existsSync(opener.argvFile) ? Fs.readFileSync(opener.argvFile, "utf8") : undefined,
        10_000,
        "the opener to run"
      )
      const args = argv.trimEnd().split("\n")
      assert.strictEqual(args.length, 1)
      assert.match(args[0]!, /^http:\/\/127\.0\.0\.1:\d+\/start$/)
      // the state exists only behind the start address
      const { authorizeUrl, cookie } = yield* Effect.promise(() => visitStart(args[0]!))
      const state = new URL(authorizeUrl).searchParams.get("state")!
      assert.lengthOf(state, 43)
      assert.notInclude(argv, state)
      const location = yield* Effect.promise(() => decide(server, authorizeUrl))
      const page = yield* Effect.promise(() => fetch(location, { headers: { cookie } }))
      assert.strictEqual(page.status, 200)
      const { code, stderr, stdout } = yield* Effect.promise(() => result)
      assert.strictEqual(code, 0, stderr)
      assert.strictEqual(stdout, `${args[0]}\n`)
      assert.notInclude(stderr + stdout, state)
    }))

  it.scopedLive("the victim's flow: start address, Strava, the redirect with the cookie; the token file is written", () =>
    Effect.gen(function*() {
      const { server } = yield* MockServer.make()
      const box = sandbox(server)
      const child = start(["login", "--no-browser"], box.env)
      const result = collect(child)
      child.stdin!.end()
      const startUrl = yield* Effect.promise(() => firstLine(child))
      assert.match(startUrl, /^http:\/\/127\.0\.0\.1:(\d+)\/start$/)
      const port = startUrl.match(/:(\d+)\//)![1]
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
      assert.include(stderr, `start address ${startUrl} was opened a second time`)
      // whoever holds the cookie can no longer finish it
      const location = yield* Effect.promise(() => decide(server, first.authorizeUrl))
      const late = yield* Effect.promise(() =>
        fetch(location, { headers: { cookie: first.cookie } }).then(() => "answered", () => "refused")
      )
      assert.strictEqual(late, "refused")
      assert.isFalse(Fs.existsSync(box.tokenFile))
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
