/**
 * The simulator behind a real HTTP server on 127.0.0.1, for black-box tests and for a person.
 *
 * It serves Strava's endpoints on its own origin: `/oauth/authorize` (an HTML page), `/oauth/token`,
 * `/oauth/deauthorize`, `/oauth/revoke` and the API under `/api/v3`. So `STRAVA_BASE_URL=<url>` and
 * `STRAVA_API_URL=<url>/api/v3` point any program at it.
 *
 * A few control endpoints let a test in another process drive it, under `/_mock/` (which Strava does not
 * have): `GET /_mock/log`, `POST /_mock/revoke`, `POST /_mock/expire?in=SECONDS`, `POST /_mock/faults`
 * (a JSON `Plan`), `DELETE /_mock/faults`, `POST /_mock/active?value=false`.
 *
 * It is written on `node:http` rather than Effect's HttpServer because fault injection needs the raw
 * socket: a connection reset is `socket.resetAndDestroy()`, a hang is a request never answered.
 *
 * @since 0.1.0
 */
import * as Http from "node:http"
import type * as Net from "node:net"

import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"

import * as AuthorizePage from "./AuthorizePage.js"
import type * as Fault from "./Fault.js"
import * as MockStrava from "./MockStrava.js"
import type * as Simulator from "./Simulator.js"
import type { Response } from "./StravaResponse.js"
import { json } from "./StravaResponse.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface MockServerShape {
  /** `http://127.0.0.1:PORT`: use as `STRAVA_BASE_URL`. */
  readonly url: string
  /** `http://127.0.0.1:PORT/api/v3`: use as `STRAVA_API_URL`. */
  readonly apiUrl: string
  readonly port: number
}

/**
 * @since 0.1.0
 * @category tags
 */
export class MockServer extends Context.Tag("@strava-auth/testing/MockServer")<MockServer, MockServerShape>() {}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options extends Simulator.Options {
  /** Default 0: a free port. */
  readonly port?: number | undefined
  /** Default `127.0.0.1`. */
  readonly host?: string | undefined
}

const MAX_BODY = 64 * 1024

const readBody = (req: Http.IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    let size = 0
    req.on("data", (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_BODY) {
        reject(new Error("body too large"))
        req.destroy()
      } else chunks.push(chunk)
    })
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    req.on("error", reject)
  })

const send = (res: Http.ServerResponse, response: Response) => {
  res.writeHead(response.status, response.headers)
  res.end(response.body)
}

const html = (status: number, body: string): Response => ({
  status,
  headers: { "content-type": "text/html; charset=utf-8" },
  body
})

const redirect = (location: string): Response => ({
  status: 302,
  headers: { location, "content-type": "text/html; charset=utf-8" },
  body: `<a href="${location.replace(/"/g, "&quot;")}">Redirecting</a>`
})

/**
 * Starts the server; it stops when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<{ readonly server: MockServerShape; readonly mock: MockStrava.MockStravaShape }, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const host = options.host ?? "127.0.0.1"
    const sockets = new Set<Net.Socket>()
    const server = Http.createServer()
    server.on("connection", (socket) => {
      sockets.add(socket)
      socket.on("close", () => sockets.delete(socket))
    })
    const port = yield* Effect.acquireRelease(
      Effect.async<number, Error>((resume) => {
        server.once("error", (error) => resume(Effect.fail(error)))
        server.listen({ port: options.port ?? 0, host }, () => {
          const address = server.address()
          resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : 0))
        })
      }),
      () =>
        Effect.async<void>((resume) => {
          for (const socket of sockets) socket.destroy()
          server.close(() => resume(Effect.void))
        })
    )
    const url = `http://${host}:${port}`
    const urls = { baseUrl: url, apiUrl: `${url}/api/v3` }
    const mock = yield* MockStrava.make({ ...options, urls })
    const runtime = yield* Effect.runtime<never>()
    const run = <A>(effect: Effect.Effect<A>) => Runtime.runPromise(runtime)(effect)

    const control = async (req: Http.IncomingMessage, path: string, query: URLSearchParams, body: string) => {
      const athleteId = query.has("athlete_id") ? Number(query.get("athlete_id")) : undefined
      if (req.method === "GET" && path === "/_mock/log") return json(200, await run(mock.log))
      if (req.method === "POST" && path === "/_mock/revoke") {
        return json(200, { revoked: await run(mock.revokeAthlete(athleteId)) })
      }
      if (req.method === "POST" && path === "/_mock/expire") {
        const seconds = Number(query.get("in") ?? "0")
        return json(200, { expired: await run(mock.expireAccessTokens(Duration.seconds(seconds))) })
      }
      if (req.method === "POST" && path === "/_mock/faults") {
        await run(mock.inject(JSON.parse(body) as Fault.Plan))
        return json(200, { ok: true })
      }
      if (req.method === "DELETE" && path === "/_mock/faults") {
        await run(mock.clearFaults)
        return json(200, { ok: true })
      }
      if (req.method === "POST" && path === "/_mock/active") {
        await run(mock.setActive(query.get("value") !== "false"))
        return json(200, { ok: true })
      }
      return json(404, { message: "unknown control endpoint" })
    }

    const authorize = async (query: URLSearchParams): Promise<Response> => {
      const checked = mock.simulator.checkAuthorize(query)
      if ("_tag" in checked) return checked.response
      if (mock.simulator.alreadyGranted(checked, mock.athlete.id)) {
        return redirect(await run(mock.approve(`/oauth/authorize?${query}`).pipe(Effect.orDie)))
      }
      return html(200, AuthorizePage.render(checked, `${mock.athlete.firstname} ${mock.athlete.lastname}`))
    }

    const accept = async (body: string): Promise<Response> => {
      const form = new URLSearchParams(body)
      const query = new URLSearchParams()
      for (const key of ["client_id", "redirect_uri", "scope", "state", "approval_prompt", "response_type"]) {
        const value = form.get(key)
        if (value !== null) query.set(key, value)
      }
      const result = await run(Effect.either(mock.approve(`/oauth/authorize?${query}`, {
        deny: form.get("decision") !== "authorize",
        scopes: form.getAll("grant")
      })))
      return result._tag === "Right"
        ? redirect(result.right)
        : { status: result.left.status, headers: {}, body: result.left.body }
    }

    server.on("request", (req: Http.IncomingMessage, res: Http.ServerResponse) => {
      const handle = async () => {
        const target = new URL(req.url ?? "/", url)
        const path = target.pathname
        const body = await readBody(req)
        if (path.startsWith("/_mock/")) return send(res, await control(req, path, target.searchParams, body))
        if (req.method === "GET" && (path === "/oauth/authorize" || path === "/oauth/mobile/authorize")) {
          return send(res, await authorize(target.searchParams))
        }
        if (req.method === "POST" && path === "/oauth/accept") return send(res, await accept(body))
        const headers: Record<string, string> = {}
        for (const [k, v] of Object.entries(req.headers)) {
          if (typeof v === "string") headers[k] = v
        }
        const api = path === "/api/v3" || path.startsWith("/api/v3/")
        const outcome = await run(mock.handle({
          method: req.method ?? "GET",
          path: api ? path.slice("/api/v3".length) || "/" : path,
          api,
          query: target.searchParams,
          headers,
          body
        }))
        switch (outcome._tag) {
          case "Hang":
            return // never answered; the socket is destroyed when the server stops
          case "Reset":
            return req.socket.resetAndDestroy()
          case "Respond":
            if (outcome.delayMillis > 0) await run(Effect.sleep(Duration.millis(outcome.delayMillis)))
            return send(res, outcome.response)
        }
      }
      handle().catch((error: unknown) => {
        if (!res.headersSent) {
          send(
            res,
            json(400, { message: "Bad Request", errors: [{ resource: "Request", field: "", code: String(error) }] })
          )
        }
      })
    })
    return { server: { url, apiUrl: urls.apiUrl, port }, mock }
  })

/**
 * The server and the mock it serves, as a scoped layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<MockServer | MockStrava.MockStrava, Error> =>
  Layer.scopedContext(
    Effect.map(
      make(options),
      ({ mock, server }) => Context.make(MockServer, server).pipe(Context.add(MockStrava.MockStrava, mock))
    )
  )
