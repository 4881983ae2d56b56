import * as Fs from "node:fs"
import * as Path from "node:path"

import { assert, describe, it } from "@effect/vitest"
import { GrantStore, RefreshEngine, StravaError, Token } from "@strava-auth/core"
import { MockServer } from "@strava-auth/testing"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

import * as Helper from "../src/Helper.js"
import { daemon, eventually, login, sandbox, socketGet, start, tempDir } from "./harness.js"
import { helpersOf, killHelpersAtEnd, statOf } from "./processes.js"

// Black-box: the real `strava-auth daemon` (the esbuild bundle: `pnpm build` first) against the mock Strava
// server on 127.0.0.1, running each refresh in its real helper process (`strava-auth refresh --local --report`).

const readJson = (file: string) => JSON.parse(Fs.readFileSync(file, "utf8"))

const health = (socket: string) =>
  socketGet(socket, "/health").then((reply) => (reply._tag === "Reply" ? JSON.parse(reply.body) : undefined))

/** Strava answers token requests 1.5 s late, once: long enough to see the helper process waiting for it. */
const slowOnce = { endpoint: "token", fault: { _tag: "Slow", millis: 1500 }, when: { times: 1 } } as const

describe("the refresh helper process", () => {
  it.live("a refresh runs in a detached helper the daemon spawns; its report is adopted and the file rotated", () =>
    Effect.scoped(Effect.gen(function*() {
      const { mock, server } = yield* MockServer.make({ refreshThresholdMillis: 7 * 3_600_000 })
      const box = sandbox(server)
      yield* killHelpersAtEnd(box.tokenFile)
      yield* login(box, server)
      const old = readJson(box.tokenFile)
      const { child } = yield* daemon(box)
      yield* mock.inject(slowOnce)
      const before = (yield* mock.log).length
      const reply = socketGet(box.socket, "/refresh", "POST")
      // While Strava takes its time, the request is the helper's: a child of the daemon, in a session of its own.
      const helper = yield* eventually(async () => helpersOf(box.tokenFile)[0], 5_000, "the helper process")
      assert.deepStrictEqual(statOf(helper), { ppid: child.pid!, session: helper })
      const answered = yield* Effect.promise(() => reply)
      assert.strictEqual(answered._tag === "Reply" && answered.status, 200)
      const refreshes = (yield* mock.log).slice(before).filter((e) => e.grantType === "refresh_token")
      assert.deepStrictEqual(refreshes.map((e) => [e.outcome, e.refreshToken === old.refresh_token]), [
        ["refreshed, then fault slow 1500ms", true]
      ])
      const file = readJson(box.tokenFile)
      assert.strictEqual(file.refresh_token, yield* mock.liveRefreshToken())
      assert.notStrictEqual(file.access_token, old.access_token)
      // the daemon adopted the helper's report: it serves the new token, status ok
      const served = yield* Effect.promise(() => socketGet(box.socket, "/token"))
      assert.deepStrictEqual(served, { _tag: "Reply", status: 200, body: file.access_token })
      const status = yield* Effect.promise(() => health(box.socket))
      assert.strictEqual(status.status, "ok")
      assert.strictEqual(status.consecutive_failures, 0)
      assert.deepStrictEqual(helpersOf(box.tokenFile), [])
    })))

  it.live("kill -9 of the daemon while its helper waits for Strava: the helper writes the rotation; nothing is lost", () =>
    Effect.scoped(Effect.gen(function*() {
      const { mock, server } = yield* MockServer.make({ refreshThresholdMillis: 7 * 3_600_000 })
      const box = sandbox(server)
      yield* killHelpersAtEnd(box.tokenFile)
      yield* login(box, server)
      const old = readJson(box.tokenFile)
      const child = start(["daemon"], box.env)
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
      yield* eventually(async () => ((await health(box.socket)) === undefined ? undefined : true), 15_000, "the socket")
      yield* mock.inject(slowOnce)
      void socketGet(box.socket, "/refresh", "POST")
      const helper = yield* eventually(async () => helpersOf(box.tokenFile)[0], 5_000, "the helper process")
      child.kill("SIGKILL") // Strava has the request, and will rotate the refresh token as it answers
      yield* Effect.promise(() => exited)
      yield* eventually(async () => (statOf(helper) === undefined ? true : undefined), 10_000, "the helper to end")
      const file = readJson(box.tokenFile)
      assert.notStrictEqual(file.refresh_token, old.refresh_token)
      assert.strictEqual(file.refresh_token, yield* mock.liveRefreshToken())
      // the next daemon adopts it
      yield* daemon(box)
      const served = yield* Effect.promise(() => socketGet(box.socket, "/token"))
      assert.deepStrictEqual(served, { _tag: "Reply", status: 200, body: file.access_token })
    })))

  it.live("a helper's failure comes back as the typed error: Strava's 503 is retrying with ServerError's message", () =>
    Effect.scoped(Effect.gen(function*() {
      const { mock, server } = yield* MockServer.make()
      const box = sandbox(server)
      yield* killHelpersAtEnd(box.tokenFile)
      yield* login(box, server)
      const old = readJson(box.tokenFile)
      yield* daemon(box)
      yield* mock.inject({ endpoint: "token", fault: { _tag: "ServerError", status: 503 }, when: { times: 1 } })
      const before = (yield* mock.log).length
      const reply = yield* Effect.promise(() => socketGet(box.socket, "/refresh", "POST"))
      assert.strictEqual(reply._tag === "Reply" && reply.status, 503)
      const status = yield* Effect.promise(() => health(box.socket))
      assert.strictEqual(status.status, "retrying")
      assert.strictEqual(status.consecutive_failures, 1)
      assert.strictEqual(status.last_error, new StravaError.ServerError({ status: 503 }).message)
      // the attempt reached Strava (from the helper), and the grant is untouched
      const refreshes = (yield* mock.log).slice(before).filter((e) => e.grantType === "refresh_token")
      assert.deepStrictEqual(refreshes.map((e) => e.status), [503])
      assert.strictEqual(readJson(box.tokenFile).refresh_token, old.refresh_token)
      const served = yield* Effect.promise(() => socketGet(box.socket, "/token"))
      assert.deepStrictEqual(served, { _tag: "Reply", status: 200, body: old.access_token })
    })))
})

describe("Helper.executor: what a helper reports", () => {
  const set = (name: string, expiresAt: number) =>
    new Token.TokenSet({
      tokenType: "Bearer",
      accessToken: Redacted.make(`access-${name}`),
      refreshToken: Redacted.make(`refresh-${name}`),
      expiresAt,
      scopes: ["read"]
    })

  it.live("an unsaved report: GrantUnsaved with the set the helper says it replaces; the helper got the seen digest in its environment, no token on argv", () =>
    Effect.gen(function*() {
      const dir = tempDir("sa-helper-")
      const seen = set("seen", 1_000) // what the daemon holds
      const replaces = set("replaces", 2_000) // what the file held when the helper refreshed (another process wrote it)
      const fresh = set("fresh", 3_000)
      const error = new GrantStore.GrantStoreError({ key: "default", reason: "NoSpace", location: "x", detail: "full" })
      const line = Schema.encodeSync(Schema.parseJson(Helper.Report))({
        version: Helper.reportVersion,
        ok: false,
        error,
        unsaved: { tokens: fresh, replaces }
      })
      // The fake helper records its argv and the digest it was given, then prints the report line.
      const script = Path.join(dir, "helper.mjs")
      const record = Path.join(dir, "record.json")
      Fs.writeFileSync(Path.join(dir, "report"), `${line}\n`)
      Fs.writeFileSync(
        script,
        `import * as Fs from "node:fs"\n` +
          `Fs.writeFileSync(${JSON.stringify(record)}, JSON.stringify({ argv: process.argv.slice(2), ` +
          `seen: process.env[${JSON.stringify(Helper.seenVariable)}] ?? null }))\n` +
          `process.stdout.write(Fs.readFileSync(${JSON.stringify(Path.join(dir, "report"))}, "utf8"))\n`
      )
      const execute = yield* Helper.executor({
        tokenFile: Path.join(dir, "token.json"),
        flags: [],
        command: [process.execPath, script]
      }).pipe(Effect.provide(GrantStore.layerMemory()))
      const failure = yield* Effect.flip(execute("default", { force: true, seen }))
      assert.strictEqual(failure._tag, "GrantUnsaved")
      if (failure._tag !== "GrantUnsaved") return
      assert.deepStrictEqual(failure.tokens, fresh)
      assert.deepStrictEqual(failure.previous, replaces)
      assert.deepStrictEqual(failure.error, error)
      const recorded = JSON.parse(Fs.readFileSync(record, "utf8"))
      assert.strictEqual(recorded.seen, yield* RefreshEngine.fingerprint(seen))
      for (const token of [seen, replaces, fresh].flatMap((s) => [s.accessToken, s.refreshToken])) {
        assert.notInclude(recorded.argv.join(" "), Redacted.value(token))
      }
      assert.includeMembers(recorded.argv, ["refresh", "--local", "--report"])
    }))
})
