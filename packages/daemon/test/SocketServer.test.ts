import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"

import { assert, describe, it } from "@effect/vitest"
import { Token } from "@strava-auth/core"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"

import type * as Refresher from "../src/Refresher.js"
import * as SocketServer from "../src/SocketServer.js"
import { socketGet, tempDir } from "./harness.js"

const tokens = new Token.TokenSet({
  tokenType: "Bearer",
  accessToken: Redacted.make("tok-123"),
  refreshToken: Redacted.make("ref-456"),
  expiresAt: 2_000_000_000,
  scopes: ["read"],
  athlete: { id: 7 }
})

const ok: Refresher.Snapshot = {
  status: "ok",
  tokens,
  nextRefreshAt: 1_999_000_000_000,
  lastRefreshAt: undefined,
  consecutiveFailures: 0,
  lastError: undefined
}

const listen = (snapshot: () => Refresher.Snapshot, now = () => 1_900_000_000_000) =>
  Effect.gen(function*() {
    const dir = tempDir("sock-") // removed when the test ends
    const socket = Path.join(dir, "run", "token.sock")
    yield* SocketServer.serve(socket, {
      snapshot,
      now,
      refresh: () => Promise.resolve({ ok: true as const, outcome: "refreshed" as const })
    })
    return socket
  })

/** Sends raw bytes and resolves with the whole reply (or what arrived before the server closed). */
const raw = (socket: string, bytes: string | Buffer) =>
  new Promise<string>((resolve) => {
    const client = Net.connect({ path: socket })
    let reply = ""
    client.on("data", (d) => (reply += d.toString()))
    client.on("close", () => resolve(reply))
    client.on("error", () => resolve(reply))
    client.write(bytes, () => client.end())
  })

describe("SocketServer", () => {
  it.scoped("serves /token as text, /token.json and /health as JSON", () =>
    Effect.gen(function*() {
      const socket = yield* listen(() => ok)
      const token = yield* Effect.promise(() => socketGet(socket, "/token"))
      assert.deepStrictEqual(token, { _tag: "Reply", status: 200, body: "tok-123" })
      const json = yield* Effect.promise(() => socketGet(socket, "/token.json"))
      assert.deepStrictEqual(json._tag === "Reply" && JSON.parse(json.body), {
        version: 1,
        access_token: "tok-123",
        token_type: "Bearer",
        expires_at: 2_000_000_000,
        scope: "read",
        athlete_id: 7
      })
      const health = yield* Effect.promise(() => socketGet(socket, "/health"))
      assert.strictEqual(health._tag === "Reply" && JSON.parse(health.body).status, "ok")
    }))

  it.scoped("/health never shows a next refresh in the past: a due one is shown as now", () =>
    Effect.gen(function*() {
      const now = 1_900_000_000_000
      const socket = yield* listen(() => ({ ...ok, nextRefreshAt: now - 60_000 }), () => now)
      const reply = yield* Effect.promise(() => socketGet(socket, "/health"))
      const body = reply._tag === "Reply" ? JSON.parse(reply.body) : {}
      assert.strictEqual(body.next_refresh_at, new Date(now).toISOString())
    }))

  it.scoped("an expired token is never served: 503 with a reason", () =>
    Effect.gen(function*() {
      const socket = yield* listen(() => ({ ...ok, status: "retrying", lastError: "Strava answered 503" }), () =>
        2_000_000_001_000)
      const token = yield* Effect.promise(() =>
        socketGet(socket, "/token")
      )
      assert.strictEqual(token._tag === "Reply" && token.status, 503)
      const body = token._tag === "Reply" ? JSON.parse(token.body) : {}
      assert.strictEqual(body.error, "unavailable")
      assert.include(body.message, "Strava answered 503")
      assert.notInclude(token._tag === "Reply" ? token.body : "", "tok-123")
    }))

  it.scoped("the socket is 0600 in a 0700 directory", () =>
    Effect.gen(function*() {
      const socket = yield* listen(() => ok)
      assert.strictEqual(Fs.statSync(socket).mode & 0o777, 0o600)
      assert.strictEqual(Fs.statSync(Path.dirname(socket)).mode & 0o777, 0o700)
    }))

  it.scoped("garbage, huge headers and a stuck client do not stop others from being served", () =>
    Effect.gen(function*() {
      const socket = yield* listen(() => ok)
      const stuck = Net.connect({ path: socket })
      stuck.write("GET /token HTTP/1.1\r\nhost: x\r\n") // never finishes its headers
      const garbage = yield* Effect.promise(() => raw(socket, Buffer.from([0, 1, 2, 255, 13, 10, 13, 10])))
      assert.match(garbage, /^HTTP\/1\.1 400/)
      const huge = yield* Effect.promise(() =>
        raw(socket, `GET /token HTTP/1.1\r\nhost: x\r\nx-big: ${"a".repeat(64 * 1024)}\r\n\r\n`)
      )
      assert.match(huge, /^HTTP\/1\.1 431/)
      const body = yield* Effect.promise(() =>
        raw(socket, "POST /refresh HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello")
      )
      assert.match(body, /^HTTP\/1\.1 413/)
      const token = yield* Effect.promise(() => socketGet(socket, "/token"))
      assert.deepStrictEqual(token, { _tag: "Reply", status: 200, body: "tok-123" })
      stuck.destroy()
    }))
})
