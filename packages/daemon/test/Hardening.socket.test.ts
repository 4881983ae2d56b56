// A broken or hostile client on the token socket: pipelining without reading, a flood of connections, idle and
// slow requests, error replies. Each through the real Unix socket with a raw `node:net` client.
import * as Net from "node:net"
import * as Path from "node:path"

import { assert, describe, it, onTestFinished } from "@effect/vitest"
import { Token } from "@strava-auth/core"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"

import type * as Refresher from "../src/Refresher.js"
import * as SocketServer from "../src/SocketServer.js"
import { eventually, socketGet, tempDir } from "./harness.js"

const ok: Refresher.Snapshot = {
  status: "ok",
  tokens: new Token.TokenSet({
    tokenType: "Bearer",
    accessToken: Redacted.make("tok-123"),
    refreshToken: Redacted.make("ref-456"),
    expiresAt: 2_000_000_000,
    scopes: ["read"],
    athlete: { id: 7 }
  }),
  nextRefreshAt: 1_999_000_000_000,
  lastRefreshAt: undefined,
  consecutiveFailures: 0,
  lastError: undefined
}

const listen = Effect.gen(function*() {
  const socket = Path.join(tempDir("hard-"), "run", "token.sock")
  yield* SocketServer.serve(socket, {
    snapshot: () => ok,
    now: () => 1_900_000_000_000,
    refresh: () => Promise.resolve({ ok: true as const, outcome: "refreshed" as const })
  })
  return socket
})

/** A raw client that records what arrives and whether the server ended or closed the connection. */
const client = (socket: string, options: { readonly read?: boolean; readonly allowHalfOpen?: boolean } = {}) =>
  Effect.promise(() =>
    new Promise<{
      readonly conn: Net.Socket
      readonly state: { received: string; ended: boolean; closed: boolean; error: string | undefined }
    }>((resolve, reject) => {
      const conn = Net.connect({ path: socket, allowHalfOpen: options.allowHalfOpen ?? false })
      onTestFinished(() => void conn.destroy())
      const state = { received: "", ended: false, closed: false, error: undefined as string | undefined }
      if (options.read === false) conn.pause()
      else conn.on("data", (d: Buffer) => (state.received += d.toString("latin1")))
      conn.on("end", () => (state.ended = true))
      conn.on("close", () => (state.closed = true))
      conn.on("error", (e: NodeJS.ErrnoException) => (state.error = e.code ?? e.message))
      conn.once("connect", () => resolve({ conn, state }))
      conn.once("error", reject)
    })
  )

const request = "GET /token HTTP/1.1\r\nhost: localhost\r\n\r\n"
const answers = (received: string) => received.split("HTTP/1.1 200").length - 1

describe("the socket against broken clients", () => {
  it.scopedLive("a client that pipelines thousands of GET /token and never reads is disconnected", () =>
    Effect.gen(function*() {
      const socket = yield* listen
      const { conn, state } = yield* client(socket, { read: false })
      // keep writing (with backpressure, so only the server's reading moves it on) until the server hangs up
      const burst = Buffer.from(request.repeat(1000))
      const pump = () => {
        while (!state.closed && state.error === undefined) if (!conn.write(burst)) return void conn.once("drain", pump)
      }
      pump()
      yield* eventually(async () => (state.closed ? true : undefined), 5000, "the server to drop the connection")
      assert.isDefined(state.error) // EPIPE or ECONNRESET: the server closed it, not us
      const fresh = yield* Effect.promise(() => socketGet(socket, "/token"))
      assert.deepStrictEqual(fresh, { _tag: "Reply", status: 200, body: "tok-123" })
    }))

  it.scopedLive("10 pipelined requests get 10 answers; 1000 get at most limits.pipelined + 1, then the connection closes", () =>
    Effect.gen(function*() {
      const socket = yield* listen
      const { conn, state } = yield* client(socket)
      conn.write(request.repeat(10))
      yield* eventually(async () => (answers(state.received) === 10 ? true : undefined), 5000, "10 answers")
      state.received = ""
      conn.write(request.repeat(1000))
      yield* eventually(async () => (state.closed ? true : undefined), 5000, "the connection to close")
      assert.isAtMost(answers(state.received), SocketServer.limits.pipelined + 1)
    }))

  it.scopedLive("beyond limits.connections a new connection is closed at once; after the flood GET /token works", () =>
    Effect.gen(function*() {
      const socket = yield* listen
      const flood = []
      for (let i = 0; i < SocketServer.limits.connections; i++) flood.push(yield* client(socket))
      const extra = yield* client(socket)
      yield* eventually(async () => (extra.state.closed ? true : undefined), 2000, "the extra connection to close")
      assert.strictEqual(extra.state.received, "")
      assert.isTrue(flood.every(({ state }) => !state.closed), "the connections within the cap stay open")
      for (const { conn } of flood) conn.destroy()
      const fresh = yield* eventually(
        async () => {
          const reply = await socketGet(socket, "/token")
          return reply._tag === "Reply" ? reply : undefined
        },
        3000,
        "a fresh GET /token"
      )
      assert.deepStrictEqual(fresh, { _tag: "Reply", status: 200, body: "tok-123" })
    }))

  it.scopedLive("an idle connection gets 408 within 8 s (the 5 s limit, checked every second) and is closed", () =>
    Effect.gen(function*() {
      const socket = yield* listen
      const { state } = yield* client(socket, { allowHalfOpen: true })
      yield* eventually(async () => (state.ended ? true : undefined), 8000, "the server to close the connection")
      assert.match(state.received, /^HTTP\/1\.1 408 /)
    }))

  it.scopedLive("a request whose headers never end gets 408 within 8 s (the 5 s limit, checked every second) and is closed", () =>
    Effect.gen(function*() {
      const socket = yield* listen
      const { conn, state } = yield* client(socket, { allowHalfOpen: true })
      conn.write("GET /token HTTP/1.1\r\nhost: x\r\n")
      yield* eventually(async () => (state.ended ? true : undefined), 8000, "the server to close the connection")
      assert.match(state.received, /^HTTP\/1\.1 408 /)
    }))

  it.scopedLive("after an error reply the server closes the connection", () =>
    Effect.gen(function*() {
      const socket = yield* listen
      const { conn, state } = yield* client(socket, { allowHalfOpen: true })
      conn.write("GET /nope HTTP/1.1\r\nhost: x\r\n\r\n")
      // well before the 5 s keep-alive timeout: the close comes from the error reply
      yield* eventually(async () => (state.ended ? true : undefined), 2000, "the server to close the connection")
      assert.match(state.received, /^HTTP\/1\.1 404 /)
      assert.match(state.received, /\r\nconnection: close\r\n/i)
    }))
})
