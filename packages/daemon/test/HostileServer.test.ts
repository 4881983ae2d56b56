// Black-box: the real `strava-auth refresh --local` against a server on 127.0.0.1 that echoes the secrets it
// is sent in its error envelope, and with credentials in STRAVA_BASE_URL. Neither may reach stderr.
import * as Fs from "node:fs"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"

import { assert, describe, it } from "@effect/vitest"
import { MockServer } from "@strava-auth/testing"
import * as Effect from "effect/Effect"

import { login, run, sandbox } from "./harness.js"

/** A server that answers every request 400 with the request's form body, raw and decoded, in its envelope. */
const echoing = Effect.acquireRelease(
  Effect.async<{ url: string; http: Http.Server; received: Array<URLSearchParams> }>((resume) => {
    const received: Array<URLSearchParams> = []
    const http = Http.createServer((request, response) => {
      let body = ""
      request.setEncoding("utf8")
      request.on("data", (d: string) => (body += d))
      request.on("end", () => {
        const params = new URLSearchParams(body)
        received.push(params)
        response.writeHead(400, { "content-type": "application/json" })
        response.end(JSON.stringify({
          message: `Bad Request: ${body}`,
          errors: [{
            resource: "Echo",
            field: params.get("refresh_token") ?? "",
            code: params.get("client_secret") ?? ""
          }]
        }))
      })
    })
    http.listen(0, "127.0.0.1", () => {
      const { port } = http.address() as AddressInfo
      resume(Effect.succeed({ url: `http://127.0.0.1:${port}`, http, received }))
    })
  }),
  ({ http }) =>
    Effect.async<void>((resume) => {
      http.closeAllConnections()
      http.close(() => resume(Effect.void))
    })
)

/** A server that answers 200 and then sends body bytes without end, counting what it managed to send. */
const endless = Effect.acquireRelease(
  Effect.async<{ url: string; http: Http.Server; sent: () => number }>((resume) => {
    let sent = 0
    const chunk = Buffer.alloc(64 * 1024, 0x20)
    const http = Http.createServer((request, response) => {
      request.resume()
      response.writeHead(200, { "content-type": "application/json" })
      response.write("{\"access_token\": \"")
      const pump = () => {
        while (!response.destroyed && response.write(chunk)) {
          sent += chunk.length
          if (sent > 1024 * 1024 * 1024) {
            response.end()
            return
          }
        }
        if (!response.destroyed) response.once("drain", pump)
      }
      pump()
    })
    http.listen(0, "127.0.0.1", () => {
      const { port } = http.address() as AddressInfo
      resume(Effect.succeed({ url: `http://127.0.0.1:${port}`, http, sent: () => sent }))
    })
  }),
  ({ http }) =>
    Effect.async<void>((resume) => {
      http.closeAllConnections()
      http.close(() => resume(Effect.void))
    })
)

const forms = (
  secret: string
) => [secret, encodeURIComponent(secret), new URLSearchParams({ v: secret }).toString().slice(2)]

/** A sandbox with a token file from a real login at the mock (which runs until the scope closes). */
const loggedIn = Effect.gen(function*() {
  const { server } = yield* MockServer.make()
  const box = sandbox(server)
  const logged = yield* login(box, server)
  assert.strictEqual(logged.result.code, 0, logged.result.stderr)
  return box
})

describe("a hostile Strava", () => {
  it.live("refresh --local against a server that echoes the refresh token and client secret shows neither", () =>
    Effect.scoped(Effect.gen(function*() {
      const box = yield* loggedIn
      const hostile = yield* echoing
      const result = yield* run(["refresh", "--local"], { ...box.env, STRAVA_BASE_URL: hostile.url })
      // It did talk to the hostile server, and sent it the secrets it echoed.
      assert.strictEqual(hostile.received.length, 1)
      const sent = hostile.received[0]!
      const refreshToken = sent.get("refresh_token") ?? ""
      const clientSecret = sent.get("client_secret") ?? ""
      assert.isAbove(refreshToken.length, 10)
      assert.isAbove(clientSecret.length, 10)
      assert.notStrictEqual(result.code, 0)
      assert.include(result.stderr, "[redacted]")
      for (const form of [...forms(refreshToken), ...forms(clientSecret)]) {
        assert.notInclude(result.stderr, form)
        assert.notInclude(result.stdout, form)
      }
    })))

  it.live(
    "refresh --local against an endless token answer stops reading at the cap and fails, the grant kept",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const box = yield* loggedIn
        const before = Fs.readFileSync(box.tokenFile, "utf8")
        const huge = yield* endless
        const result = yield* run(["refresh", "--local"], { ...box.env, STRAVA_BASE_URL: huge.url })
        assert.strictEqual(Fs.readFileSync(box.tokenFile, "utf8"), before)
        assert.notStrictEqual(result.code, 0)
        assert.include(result.stderr, "response is too large")
        // The client hung up long before a gigabyte: it read at most a few socket buffers past the cap.
        assert.isBelow(huge.sent(), 64 * 1024 * 1024)
      })),
    60_000
  )

  it.live("STRAVA_BASE_URL with user:password is refused with exit 78, without showing the password", () =>
    Effect.scoped(Effect.gen(function*() {
      const box = yield* loggedIn
      const result = yield* run(["refresh", "--local"], {
        ...box.env,
        STRAVA_BASE_URL: `http://strava-user:hunter2-secret@${new URL(box.env["STRAVA_BASE_URL"]!).host}`
      })
      assert.strictEqual(result.code, 78, result.stderr)
      assert.include(result.stderr, "STRAVA_BASE_URL")
      assert.include(result.stderr, "user name or password")
      assert.notInclude(result.stderr, "hunter2-secret")
    })))
})
