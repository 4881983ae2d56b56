import * as Net from "node:net"
import * as Path from "node:path"

import { assert, describe, it } from "@effect/vitest"
import { Token } from "@strava-auth/core"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FastCheck from "effect/FastCheck"
import * as Redacted from "effect/Redacted"

import type * as Refresher from "../src/Refresher.js"
import * as SocketServer from "../src/SocketServer.js"
import * as TokenFile from "../src/TokenFile.js"
import { socketGet, tempDir } from "./harness.js"

const valid = JSON.parse(TokenFile.encode(
  new Token.TokenSet({
    tokenType: "Bearer",
    accessToken: Redacted.make("ACCESS-SECRET-1"),
    refreshToken: Redacted.make("REFRESH-SECRET-2"),
    expiresAt: 2_000_000_000,
    scopes: ["read", "activity:read"],
    athlete: { id: 1 }
  }),
  0
)) as Record<string, unknown>

describe("fuzz: token files", () => {
  it("any content decodes to a token set or a Malformed error that names no secret", () => {
    const mutated = FastCheck.tuple(
      FastCheck.subarray(Object.keys(valid)),
      FastCheck.dictionary(FastCheck.constantFrom(...Object.keys(valid), "extra"), FastCheck.jsonValue())
    ).map(([drop, replace]) => {
      const copy: Record<string, unknown> = { ...valid, ...replace }
      for (const key of drop) delete copy[key]
      return JSON.stringify(copy)
    })
    const texts = FastCheck.oneof(
      mutated,
      mutated.chain((t) => FastCheck.nat(t.length).map((n) => t.slice(0, n))), // a torn write
      FastCheck.string(),
      FastCheck.json()
    )
    FastCheck.assert(
      FastCheck.property(texts, (text) => {
        const exit = Effect.runSyncExit(TokenFile.decode("/x/token.json", text))
        if (Exit.isFailure(exit)) {
          assert.strictEqual(exit.cause._tag, "Fail")
          const message = exit.cause._tag === "Fail" ? exit.cause.error.message : ""
          assert.include(message, "strava-auth login")
          assert.notInclude(message, "ACCESS-SECRET")
          assert.notInclude(message, "REFRESH-SECRET")
        }
      }),
      { numRuns: 1000 }
    )
  })
})

const ok: Refresher.Snapshot = {
  status: "ok",
  tokens: new Token.TokenSet({
    tokenType: "Bearer",
    accessToken: Redacted.make("tok"),
    refreshToken: Redacted.make("ref"),
    expiresAt: 2_000_000_000,
    scopes: ["read"]
  }),
  nextRefreshAt: undefined,
  lastRefreshAt: undefined,
  consecutiveFailures: 0,
  lastError: undefined
}

const send = (socket: string, bytes: Uint8Array, slow: boolean) =>
  new Promise<void>((resolve) => {
    const client = Net.connect({ path: socket })
    client.on("error", () => resolve())
    client.on("close", () => resolve())
    client.on("data", () => undefined)
    client.on("connect", async () => {
      if (slow) {
        for (const byte of bytes.slice(0, 16)) {
          client.write(Uint8Array.of(byte))
          await new Promise((r) => setImmediate(r))
        }
      } else client.write(bytes)
      client.end()
    })
  })

describe("fuzz: socket requests", () => {
  it.scoped(
    "random bytes, request-like garbage and slow writers never stop /token for others",
    () =>
      Effect.gen(function*() {
        const socket = Path.join(tempDir("fz-"), "s.sock")
        yield* SocketServer.serve(socket, {
          snapshot: () => ok,
          now: () => 1_900_000_000_000,
          refresh: () => Promise.resolve({ ok: true as const, outcome: "refreshed" as const })
        })
        const requestish = FastCheck.tuple(
          FastCheck.constantFrom("GET", "POST", "PUT", "BREW", ""),
          FastCheck.oneof(
            FastCheck.constantFrom("/token", "/token.json", "/health", "/refresh", "*"),
            FastCheck.string()
          ),
          FastCheck.array(FastCheck.tuple(FastCheck.string(), FastCheck.string()), { maxLength: 5 })
        ).map(([m, p, h]) =>
          new TextEncoder().encode(`${m} ${p} HTTP/1.1\r\n${h.map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n`)
        )
        yield* Effect.promise(() =>
          FastCheck.assert(
            FastCheck.asyncProperty(
              FastCheck.oneof(FastCheck.uint8Array({ maxLength: 2048 }), requestish),
              FastCheck.boolean(),
              async (bytes, slow) => {
                await send(socket, bytes, slow)
                const reply = await socketGet(socket, "/token")
                assert.deepStrictEqual(reply, { _tag: "Reply", status: 200, body: "tok" })
              }
            ),
            { numRuns: 150 }
          )
        )
      }),
    { timeout: 60_000 }
  )
})
