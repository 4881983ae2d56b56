// Behind a proxy: HTTP_PROXY / HTTPS_PROXY / NO_PROXY are honoured by every command that talks to Strava,
// the daemon's refresh helper included. The proxy is a real one on 127.0.0.1 (CONNECT tunnels and
// absolute-form requests), recording where each request went.
import * as Http from "node:http"
import * as Net from "node:net"

import { assert, describe, it } from "@effect/vitest"
import { MockServer } from "@strava-auth/testing"
import * as Effect from "effect/Effect"

import { daemon, login, run, sandbox } from "./harness.js"

/** A forward proxy on 127.0.0.1: the `host:port` of every request it carried, in order. */
const proxy = Effect.acquireRelease(
  Effect.promise(() =>
    new Promise<{ readonly url: string; readonly seen: Array<string>; readonly server: Http.Server }>((resolve) => {
      const seen: Array<string> = []
      const sockets = new Set<Net.Socket>()
      const server = Http.createServer((req, res) => {
        // absolute-form: GET http://host:port/path
        const target = new URL(req.url ?? "")
        seen.push(target.host)
        const upstream = Http.request(target, { method: req.method, headers: req.headers }, (reply) => {
          res.writeHead(reply.statusCode ?? 502, reply.headers)
          reply.pipe(res)
        })
        upstream.on("error", () => res.writeHead(502).end())
        req.pipe(upstream)
      })
      server.on("connect", (req: Http.IncomingMessage, client: Net.Socket, head: Buffer) => {
        seen.push(req.url ?? "")
        const [host, port] = (req.url ?? "").split(":")
        const upstream = Net.connect(Number(port), host, () => {
          client.write("HTTP/1.1 200 Connection Established\r\n\r\n")
          upstream.write(head)
          upstream.pipe(client)
          client.pipe(upstream)
        })
        for (const socket of [upstream, client]) {
          sockets.add(socket)
          socket.on("close", () => sockets.delete(socket))
          socket.on("error", () => {
            upstream.destroy()
            client.destroy()
          })
        }
      })
      server.on("connection", (socket) => {
        sockets.add(socket)
        socket.on("close", () => sockets.delete(socket))
      })
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as Net.AddressInfo
        resolve({ url: `http://127.0.0.1:${port}`, seen, server: Object.assign(server, { sockets }) })
      })
    })
  ),
  ({ server }) =>
    Effect.promise(() =>
      new Promise<void>((resolve) => {
        for (const socket of (server as unknown as { sockets: Set<Net.Socket> }).sockets) socket.destroy()
        server.close(() => resolve())
      })
    )
)

describe("behind a proxy", () => {
  it.scopedLive(
    "HTTP_PROXY carries the command's requests to Strava; NO_PROXY and HTTPS_PROXY (for http://) do not",
    () =>
      Effect.gen(function*() {
        const { server } = yield* MockServer.make()
        const through = yield* proxy
        const box = sandbox(server)
        yield* login(box, server)
        const strava = new URL(server.url).host

        const proxied = yield* run(["refresh", "--local"], { ...box.env, HTTP_PROXY: through.url })
        assert.strictEqual(proxied.code, 0, proxied.stderr)
        assert.deepStrictEqual(through.seen, [strava])

        const lower = yield* run(["refresh", "--local"], { ...box.env, http_proxy: through.url })
        assert.strictEqual(lower.code, 0, lower.stderr)
        assert.deepStrictEqual(through.seen, [strava, strava])

        const bypassed = yield* run(["refresh", "--local"], {
          ...box.env,
          HTTP_PROXY: through.url,
          NO_PROXY: "127.0.0.1"
        })
        assert.strictEqual(bypassed.code, 0, bypassed.stderr)
        const httpsOnly = yield* run(["refresh", "--local"], { ...box.env, HTTPS_PROXY: through.url })
        assert.strictEqual(httpsOnly.code, 0, httpsOnly.stderr)
        assert.deepStrictEqual(through.seen, [strava, strava])

        // A proxy that is not there: the refresh fails as a network failure that says to check the proxy, and
        // `token` hands out the still-valid token with that warning.
        const gone = yield* run(["token", "--refresh-margin", "6h"], { ...box.env, HTTP_PROXY: "http://127.0.0.1:1" })
        assert.strictEqual(gone.code, 0, gone.stderr)
        assert.include(gone.stderr, "could not refresh (Could not reach Strava")
        assert.include(gone.stderr, "proxy")
      }),
    60_000
  )

  it.scopedLive("the daemon's refreshes (its helper process) go through the proxy", () =>
    Effect.gen(function*() {
      const { server } = yield* MockServer.make()
      const through = yield* proxy
      const box = sandbox(server)
      yield* login(box, server)
      // Due at once: the daemon refreshes as it starts.
      yield* daemon({ ...box, env: { ...box.env, HTTP_PROXY: through.url, STRAVA_AUTH_REFRESH_MARGIN: "6h" } })
      const strava = new URL(server.url).host
      yield* Effect.promise(async () => {
        const until = Date.now() + 15_000
        while (!through.seen.includes(strava)) {
          if (Date.now() > until) throw new Error("no refresh went through the proxy")
          await new Promise((r) => setTimeout(r, 50))
        }
      })
    }), 30_000)
})
