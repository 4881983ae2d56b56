/**
 * The simulator behind a real HTTP server on 127.0.0.1, for black-box tests and for a person.
 *
 * It serves Strava's endpoints on its own origin: `/oauth/authorize` (an HTML page), `/oauth/token`,
 * `/oauth/deauthorize`, `/oauth/revoke` and the API under `/api/v3`. So `STRAVA_BASE_URL=<url>` and
 * `STRAVA_API_URL=<url>/api/v3` point any program at it.
 *
 * The page signs in the athlete chosen in its `athlete_id` select (the first by default; `athlete_id` on
 * `/oauth/authorize` preselects one, a mock-only parameter) and, at the athlete cap, answers Strava's 403
 * instead for an athlete not yet connected.
 *
 * Push subscriptions (`/api/v3/push_subscriptions`) are checked as Strava does: on creation the server
 * challenges the callback over HTTP (`GET callback?hub.mode=subscribe&hub.challenge=X&hub.verify_token=T`,
 * 200 with `{"hub.challenge":"X"}` within 2 seconds). Events the simulator makes (an athlete revoking the app,
 * or one sent through `/_mock/events`) are POSTed to the callback as JSON; a callback that does not answer 200
 * within 2 seconds is tried again, three attempts in all, `eventRetryDelayMillis` apart (Strava: about two
 * minutes). Each event is delivered in its own fiber, so nothing promises order, as on Strava. Every attempt
 * lands in `simulator.deliveries`.
 *
 * A few control endpoints let a test in another process drive it, under `/_mock/` (which Strava does not
 * have): `GET /_mock/log`, `POST /_mock/revoke`, `POST /_mock/expire?in=SECONDS`, `POST /_mock/faults`
 * (a JSON `Plan`), `DELETE /_mock/faults`, `POST /_mock/active?value=false`, `POST /_mock/events` (a JSON
 * event: `object_type`, `object_id`, `aspect_type`, `owner_id`, optional `updates`, `event_time`, `client_id`),
 * `GET /_mock/events`, `GET /_mock/deliveries`.
 *
 * It is written on `node:http` rather than Effect's HttpServer because fault injection needs the raw
 * socket: a connection reset is `socket.resetAndDestroy()`, a hang is a request never answered.
 *
 * @since 0.1.0
 */
import * as Crypto from "node:crypto"
import * as Http from "node:http"
import * as Https from "node:https"
import type * as Net from "node:net"

import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
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
  /**
   * How long a callback has to answer the subscription's challenge and each event: Strava's 2 seconds by
   * default.
   *
   * @since 0.3.0
   */
  readonly callbackTimeoutMillis?: number | undefined
  /**
   * The gap between attempts to deliver an event (three in all). Default 1 second, so tests stay quick;
   * Strava's observed gap is about two minutes.
   *
   * @since 0.3.0
   */
  readonly eventRetryDelayMillis?: number | undefined
  /**
   * Deliver every event twice (each copy with its own attempts), as real apps have seen Strava do.
   * Default false.
   *
   * @since 0.3.0
   */
  readonly duplicateEvents?: boolean | undefined
}

/** Strava's: three attempts in all for an event. */
const EVENT_ATTEMPTS = 3

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

/** One HTTP call to an app's callback (no keep-alive, so a test's server closes at once). */
const call = (
  url: string,
  init: { readonly method: string; readonly headers?: Record<string, string>; readonly body?: string }
): Effect.Effect<{ readonly status: number; readonly body: string }, Error> =>
  Effect.async((resume) => {
    let target: URL
    try {
      target = new URL(url)
    } catch {
      return resume(Effect.fail(new Error(`not a URL: ${url}`)))
    }
    if (target.protocol !== "http:" && target.protocol !== "https:") {
      return resume(Effect.fail(new Error(`not an HTTP URL: ${url}`)))
    }
    const client = target.protocol === "https:" ? Https : Http
    const req = client.request(target, { method: init.method, headers: init.headers ?? {}, agent: false }, (res) => {
      const chunks: Array<Buffer> = []
      let size = 0
      res.on("data", (chunk: Buffer) => {
        size += chunk.length
        if (size <= MAX_BODY) chunks.push(chunk)
      })
      res.on(
        "end",
        () => resume(Effect.succeed({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }))
      )
      res.on("error", (error) => resume(Effect.fail(error)))
    })
    req.on("error", (error) => resume(Effect.fail(error)))
    req.end(init.body)
    return Effect.sync(() => req.destroy())
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

/** The body of `POST /_mock/events`, checked: an event input, or what is wrong with it. */
const eventInput = (
  body: unknown
): { readonly event: Simulator.PushEventInput; readonly clientId: string | undefined } | string => {
  if (typeof body !== "object" || body === null) return "the body must be a JSON object"
  const b = body as Record<string, unknown>
  const objectType = b["object_type"]
  const aspectType = b["aspect_type"]
  const objectId = b["object_id"]
  const ownerId = b["owner_id"] ?? (objectType === "athlete" ? objectId : undefined)
  if (objectType !== "activity" && objectType !== "athlete") return "object_type must be \"activity\" or \"athlete\""
  if (aspectType !== "create" && aspectType !== "update" && aspectType !== "delete") {
    return "aspect_type must be \"create\", \"update\" or \"delete\""
  }
  if (!Number.isInteger(objectId)) return "object_id must be an integer"
  if (!Number.isInteger(ownerId)) return "owner_id must be an integer (it defaults to object_id for an athlete)"
  const updates = b["updates"]
  if (updates !== undefined && (typeof updates !== "object" || updates === null || Array.isArray(updates))) {
    return "updates must be a JSON object"
  }
  const eventTime = b["event_time"]
  if (eventTime !== undefined && !Number.isInteger(eventTime)) return "event_time must be epoch seconds"
  const clientId = b["client_id"]
  return {
    event: {
      object_type: objectType,
      aspect_type: aspectType,
      object_id: objectId as number,
      owner_id: ownerId as number,
      updates: updates as Record<string, unknown> | undefined,
      event_time: eventTime as number | undefined
    },
    clientId: clientId === undefined ? undefined : String(clientId)
  }
}

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
    const simulator = mock.simulator
    const runtime = yield* Effect.runtime<never>()
    const run = <A>(effect: Effect.Effect<A>) => Runtime.runPromise(runtime)(effect)

    // Webhooks: the challenge on creation and the delivery of events, each call bounded by Strava's 2 seconds.
    const callbackTimeout = Duration.millis(options.callbackTimeoutMillis ?? 2000)
    const retryDelay = Duration.millis(options.eventRetryDelayMillis ?? 1000)
    const now = Effect.map(Clock.currentTimeMillis, (t) => t + (options.clockOffsetMillis ?? 0))
    const callCallback = (url: string, init: Parameters<typeof call>[1]) =>
      call(url, init).pipe(
        Effect.timeout(callbackTimeout),
        Effect.map((answer): { readonly status: number | "timeout" | "error"; readonly body: string } => answer),
        Effect.catchAll((error) =>
          Effect.succeed({ status: Cause.isTimeoutException(error) ? "timeout" as const : "error" as const, body: "" })
        )
      )

    const validateCallback = (callbackUrl: string, verifyToken: string) =>
      Effect.gen(function*() {
        const challenge = Crypto.randomBytes(16).toString("hex")
        let target: URL
        try {
          target = new URL(callbackUrl)
        } catch {
          return false
        }
        target.searchParams.set("hub.mode", "subscribe")
        target.searchParams.set("hub.challenge", challenge)
        target.searchParams.set("hub.verify_token", verifyToken)
        const answer = yield* callCallback(target.href, { method: "GET" })
        if (answer.status !== 200) return false
        try {
          const parsed: unknown = JSON.parse(answer.body)
          return typeof parsed === "object" && parsed !== null &&
            (parsed as Record<string, unknown>)["hub.challenge"] === challenge
        } catch {
          return false
        }
      })

    const deliver = (event: Simulator.PushEvent, subscription: Simulator.PushSubscription) =>
      Effect.gen(function*() {
        const body = JSON.stringify(event)
        const copies = options.duplicateEvents === true ? 2 : 1
        for (let copy = 1; copy <= copies; copy++) {
          for (let attempt = 1; attempt <= EVENT_ATTEMPTS; attempt++) {
            if (attempt > 1) yield* Effect.sleep(retryDelay)
            const at = yield* now
            const { status } = yield* callCallback(subscription.callbackUrl, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body
            })
            const done = status === 200 || attempt === EVENT_ATTEMPTS
            const last = done && copy === copies
            simulator.recordDelivery({ at, event, callbackUrl: subscription.callbackUrl, attempt, copy, status, last })
            if (done) break
          }
        }
      })

    // Deliveries run in fibers of the server's scope: closing the server stops them.
    const deliveries = yield* FiberSet.make()
    const fork = yield* FiberSet.runtime(deliveries)<never>()
    yield* Effect.acquireRelease(
      Effect.sync(() => simulator.onEvent((event, subscription) => fork(deliver(event, subscription)))),
      (stop) => Effect.sync(stop)
    )

    /** The athlete the page signs in: `athlete_id` if given (it must be one of the simulator's), else the first. */
    const chooseAthlete = (params: URLSearchParams): Simulator.Athlete | undefined => {
      const value = params.get("athlete_id") ?? ""
      return value === "" ? mock.athlete : simulator.athletes.get(Number(value))
    }
    const unknownAthlete = (params: URLSearchParams) =>
      html(400, `<p>mock Strava: no athlete with id ${params.get("athlete_id")?.replace(/\D/g, "")}</p>`)

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
      if (req.method === "POST" && path === "/_mock/events") {
        const input = eventInput(JSON.parse(body === "" ? "{}" : body))
        if (typeof input === "string") return json(400, { message: input })
        const event = await run(mock.sendEvent(input.event, input.clientId ?? query.get("client_id") ?? undefined))
        return event === undefined
          ? json(409, { message: "the app has no push subscription: Strava would send nothing" })
          : json(200, { event })
      }
      if (req.method === "GET" && path === "/_mock/events") return json(200, simulator.events)
      if (req.method === "GET" && path === "/_mock/deliveries") return json(200, await run(mock.deliveries))
      return json(404, { message: "unknown control endpoint" })
    }

    const refused = (error: MockStrava.AuthorizeRefused): Response => ({
      status: error.status,
      headers: {
        "content-type": error.body.startsWith("{") ? "application/json; charset=utf-8" : "text/html; charset=utf-8"
      },
      body: error.body
    })

    const authorize = async (query: URLSearchParams): Promise<Response> => {
      const checked = simulator.checkAuthorize(query)
      if ("_tag" in checked) return checked.response
      const athlete = chooseAthlete(query)
      if (athlete === undefined) return unknownAthlete(query)
      const limited = simulator.athleteLimitRefusal(checked, athlete.id, await run(now))
      if (limited !== undefined) return limited
      if (simulator.alreadyGranted(checked, athlete.id)) {
        const approved = await run(Effect.either(mock.approve(`/oauth/authorize?${query}`, { athleteId: athlete.id })))
        return approved._tag === "Right" ? redirect(approved.right) : refused(approved.left)
      }
      return html(200, AuthorizePage.render(checked, [...simulator.athletes.values()], athlete.id))
    }

    const accept = async (body: string): Promise<Response> => {
      const form = new URLSearchParams(body)
      const query = new URLSearchParams()
      for (const key of ["client_id", "redirect_uri", "scope", "state", "approval_prompt", "response_type"]) {
        const value = form.get(key)
        if (value !== null) query.set(key, value)
      }
      const athlete = chooseAthlete(form)
      if (athlete === undefined) return unknownAthlete(form)
      const result = await run(Effect.either(mock.approve(`/oauth/authorize?${query}`, {
        athleteId: athlete.id,
        deny: form.get("decision") !== "authorize",
        scopes: form.getAll("grant")
      })))
      return result._tag === "Right" ? redirect(result.right) : refused(result.left)
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
        const request: Simulator.Request = {
          method: req.method ?? "GET",
          path: api ? path.slice("/api/v3".length) || "/" : path,
          api,
          query: target.searchParams,
          headers,
          body
        }
        // Creating a push subscription: Strava challenges the callback first, and creates only if it answered.
        const toValidate = simulator.callbackToValidate(request)
        const outcome = await run(mock.handle(
          toValidate === undefined ? request : {
            ...request,
            callbackValidated: await run(validateCallback(toValidate.callbackUrl, toValidate.verifyToken))
          }
        ))
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
