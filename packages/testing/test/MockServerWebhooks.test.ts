import { spawn } from "node:child_process"
import * as Http from "node:http"
import * as Path from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"

import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"

import * as MockServer from "../src/MockServer.js"
import type * as MockStrava from "../src/MockStrava.js"
import * as Simulator from "../src/Simulator.js"

// Push subscriptions and event delivery over real HTTP on 127.0.0.1: the mock server, and the app's callback
// as a local node:http server that every test closes (with its connections) when its scope ends.

const app = Simulator.defaultApp
const bin = Path.join(Path.dirname(fileURLToPath(import.meta.url)), "../bin/strava-mock.js")

interface Received {
  readonly method: string
  readonly url: URL
  readonly body: string
}

/** What the callback does with a request: answer it, or never answer (until the test ends). */
type Answer = { readonly status: number; readonly body?: string } | "hang"

/** A node:http server on 127.0.0.1 for the scope, closed with its connections when the scope ends. */
const localServer = (handler: Http.RequestListener) =>
  Effect.acquireRelease(
    Effect.async<{ readonly origin: string; readonly server: Http.Server }>((resume) => {
      const server = Http.createServer(handler)
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        resume(Effect.succeed({ origin: `http://127.0.0.1:${port}`, server }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )

/** The app's callback: GETs echo Strava's challenge; POSTs (events) are answered by `onEvent`. */
const callbackServer = (onEvent: (index: number) => Answer = () => ({ status: 200 })) =>
  Effect.gen(function*() {
    const received: Array<Received> = []
    let events = 0
    const { origin } = yield* localServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (chunk: Buffer) => chunks.push(chunk))
      req.on("end", () => {
        const request = {
          method: req.method ?? "",
          url: new URL(req.url ?? "/", "http://127.0.0.1"),
          body: Buffer.concat(chunks).toString()
        }
        received.push(request)
        const answer: Answer = request.method === "GET"
          ? { status: 200, body: JSON.stringify({ "hub.challenge": request.url.searchParams.get("hub.challenge") }) }
          : onEvent(events++)
        if (answer === "hang") return
        res.writeHead(answer.status, { "content-type": "application/json" })
        res.end(answer.body ?? "")
      })
    })
    return { url: `${origin}/webhook`, received }
  })

const fetchText = (url: string, init: RequestInit = {}) =>
  Effect.promise(async () => {
    const response = await fetch(url, { redirect: "manual", ...init })
    return { status: response.status, headers: response.headers, text: await response.text() }
  })

const credentials = { client_id: app.clientId, client_secret: app.clientSecret }

const subscribe = (apiUrl: string, callbackUrl: string, extra: Record<string, string> = {}) =>
  fetchText(`${apiUrl}/push_subscriptions`, {
    method: "POST",
    body: new URLSearchParams({ ...credentials, callback_url: callbackUrl, verify_token: "vt-1", ...extra })
  })

const list = (apiUrl: string, params: Record<string, string> = credentials) =>
  fetchText(`${apiUrl}/push_subscriptions?${new URLSearchParams(params)}`)

/** Polls `check` until it gives a value, for at most 10 seconds. */
const eventually = <A>(what: string, check: Effect.Effect<A | undefined>) =>
  Effect.flatMap(
    check,
    (value) => value === undefined ? Effect.fail(`still waiting for ${what}`) : Effect.succeed(value)
  )
    .pipe(
      Effect.retry(Schedule.spaced("10 millis")),
      Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error(`timed out waiting for ${what}`) }),
      Effect.orDie
    )

/** The mock's deliveries once the server has made its last attempt for `count` events. */
const deliveriesOnceDone = (mock: MockStrava.MockStravaShape, count = 1) =>
  eventually(
    "the last delivery attempt",
    Effect.sync(() => {
      const deliveries = mock.simulator.deliveries
      return deliveries.filter((d) => d.last).length >= count ? deliveries.slice() : undefined
    })
  )

const sendEvent = (url: string, event: Record<string, unknown>) =>
  fetchText(`${url}/_mock/events`, { method: "POST", body: JSON.stringify(event) })

const activityCreated = { object_type: "activity", object_id: 9001, aspect_type: "create", owner_id: 1001 }

const mockServer = (options: MockServer.Options = {}) => MockServer.make({ eventRetryDelayMillis: 50, ...options })

const errors = (text: string) => JSON.parse(text) as unknown

describe("push subscriptions", () => {
  it.live("creation challenges the callback (hub.mode, hub.challenge, hub.verify_token), answers 201 {id}; list; delete", () =>
    Effect.scoped(Effect.gen(function*() {
      const callback = yield* callbackServer()
      const { mock, server } = yield* mockServer()
      const created = yield* subscribe(server.apiUrl, callback.url)
      assert.strictEqual(created.status, 201)
      const { id } = JSON.parse(created.text) as { id: number }
      assert.isTrue(Number.isInteger(id))
      assert.strictEqual(callback.received.length, 1)
      const challenge = callback.received[0]!
      assert.strictEqual(challenge.method, "GET")
      assert.strictEqual(challenge.url.pathname, "/webhook")
      assert.strictEqual(challenge.url.searchParams.get("hub.mode"), "subscribe")
      assert.strictEqual(challenge.url.searchParams.get("hub.verify_token"), "vt-1")
      assert.match(challenge.url.searchParams.get("hub.challenge") ?? "", /^\w{16,}$/)

      const listed = yield* list(server.apiUrl)
      assert.strictEqual(listed.status, 200)
      const [entry, ...rest] = JSON.parse(listed.text) as Array<Record<string, unknown>>
      assert.deepStrictEqual(rest, [])
      assert.deepStrictEqual(Object.keys(entry!).sort(), [
        "application_id",
        "callback_url",
        "created_at",
        "id",
        "resource_state",
        "updated_at"
      ])
      assert.deepStrictEqual(
        [entry!["id"], entry!["resource_state"], entry!["application_id"], entry!["callback_url"]],
        [id, 2, Number(app.clientId), callback.url]
      )
      assert.match(String(entry!["created_at"]), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/)

      const deleted = yield* fetchText(
        `${server.apiUrl}/push_subscriptions/${id}?${new URLSearchParams(credentials)}`,
        {
          method: "DELETE"
        }
      )
      assert.deepStrictEqual([deleted.status, deleted.text], [204, ""])
      assert.deepStrictEqual(JSON.parse((yield* list(server.apiUrl)).text), [])
      const unknown = yield* fetchText(
        `${server.apiUrl}/push_subscriptions/${id}?${new URLSearchParams(credentials)}`,
        {
          method: "DELETE"
        }
      )
      assert.strictEqual(unknown.status, 404)
      assert.deepStrictEqual(errors(unknown.text), {
        message: "Resource Not Found",
        errors: [{ resource: "PushSubscription", field: "id", code: "not found" }]
      })
      // No bearer token was sent, and none of these calls counted against the rate limits.
      assert.strictEqual(mock.simulator.rateLimitHeaders(Date.now())["x-ratelimit-usage"], "0,0")
      assert.deepStrictEqual(
        mock.simulator.log.map((e) => [e.endpoint, e.method, e.status]),
        [
          ["push_subscriptions", "POST", 201],
          ["push_subscriptions", "GET", 200],
          ["push_subscriptions", "DELETE", 204],
          ["push_subscriptions", "GET", 200],
          ["push_subscriptions", "DELETE", 404]
        ]
      )
    })))

  it.live("a second subscription for the app is refused (already exists) without challenging the callback", () =>
    Effect.scoped(Effect.gen(function*() {
      const callback = yield* callbackServer()
      const { server } = yield* mockServer()
      assert.strictEqual((yield* subscribe(server.apiUrl, callback.url)).status, 201)
      const second = yield* subscribe(server.apiUrl, `${callback.url}?again`)
      assert.strictEqual(second.status, 400)
      assert.deepStrictEqual(errors(second.text), {
        message: "Bad Request",
        errors: [{ resource: "PushSubscription", field: "", code: "already exists" }]
      })
      assert.strictEqual(callback.received.length, 1)
      assert.strictEqual((JSON.parse((yield* list(server.apiUrl)).text) as Array<unknown>).length, 1)
    })))

  it.live("a callback that does not answer the challenge (wrong echo, 404, not JSON, too slow, unreachable) is refused", () =>
    Effect.scoped(Effect.gen(function*() {
      const bad = yield* localServer((req, res) => {
        const url = new URL(req.url ?? "/", "http://127.0.0.1")
        const challenge = url.searchParams.get("hub.challenge")
        switch (url.pathname) {
          case "/wrong":
            res.writeHead(200, { "content-type": "application/json" }).end("{\"hub.challenge\":\"nope\"}")
            break
          case "/missing":
            res.writeHead(404).end(JSON.stringify({ "hub.challenge": challenge }))
            break
          case "/text":
            res.writeHead(200, { "content-type": "text/plain" }).end(challenge ?? "")
            break
          case "/hang":
            break // answered never: slower than the timeout
        }
      })
      const { server } = yield* mockServer({ callbackTimeoutMillis: 300 })
      for (
        const callbackUrl of ["/wrong", "/missing", "/text", "/hang"].map((p) => `${bad.origin}${p}`).concat([
          "http://127.0.0.1:9/webhook",
          "not a url"
        ])
      ) {
        const refused = yield* subscribe(server.apiUrl, callbackUrl)
        assert.strictEqual(refused.status, 400, callbackUrl)
        assert.deepStrictEqual(errors(refused.text), {
          message: "Bad Request",
          errors: [{
            resource: "PushSubscription",
            field: "callback url",
            code: "GET to callback URL does not return 200"
          }]
        }, callbackUrl)
      }
      assert.deepStrictEqual(JSON.parse((yield* list(server.apiUrl)).text), [])
    })))

  it.live("wrong app credentials are 401 Application//invalid on create, list and delete", () =>
    Effect.scoped(Effect.gen(function*() {
      const callback = yield* callbackServer()
      const { server } = yield* mockServer()
      const expected = {
        message: "Authorization Error",
        errors: [{ resource: "Application", field: "", code: "invalid" }]
      }
      const create = yield* subscribe(server.apiUrl, callback.url, { client_secret: "wrong" })
      const listed = yield* list(server.apiUrl, { ...credentials, client_secret: "wrong" })
      const deleted = yield* fetchText(`${server.apiUrl}/push_subscriptions/1?client_id=${app.clientId}`, {
        method: "DELETE"
      })
      for (const response of [create, listed, deleted]) {
        assert.strictEqual(response.status, 401)
        assert.deepStrictEqual(errors(response.text), expected)
      }
      assert.strictEqual(callback.received.length, 0)
    })))
})

describe("event delivery", () => {
  const connect = (server: MockServer.MockServerShape, mock: MockStrava.MockStravaShape, athleteId: number) =>
    Effect.gen(function*() {
      const redirect = yield* mock.approve(
        `/oauth/authorize?client_id=${app.clientId}&redirect_uri=http://127.0.0.1:9/cb&response_type=code&scope=read`,
        { athleteId }
      )
      const exchanged = yield* fetchText(`${server.url}/oauth/token`, {
        method: "POST",
        body: new URLSearchParams({
          ...credentials,
          code: new URL(redirect).searchParams.get("code")!,
          grant_type: "authorization_code"
        })
      })
      assert.strictEqual(exchanged.status, 200)
      return JSON.parse(exchanged.text) as { access_token: string }
    })

  it.live("the athlete revoking on strava.com POSTs a deauthorization event; the app's own revoke sends none", () =>
    Effect.scoped(Effect.gen(function*() {
      const callback = yield* callbackServer()
      const { mock, server } = yield* mockServer({ athletes: Simulator.makeAthletes(2) })
      const { id } = JSON.parse((yield* subscribe(server.apiUrl, callback.url)).text) as { id: number }
      yield* connect(server, mock, 1001)
      const other = yield* connect(server, mock, 1002)
      // The app revokes 1002 itself: it knows already, Strava sends nothing.
      const revoked = yield* fetchText(`${server.url}/oauth/revoke`, {
        method: "POST",
        headers: { authorization: `Basic ${btoa(`${app.clientId}:${app.clientSecret}`)}` },
        body: new URLSearchParams({ token: other.access_token })
      })
      assert.strictEqual(revoked.status, 200)
      assert.deepStrictEqual(mock.simulator.events, [])

      const before = Math.floor(Date.now() / 1000)
      const control = yield* fetchText(`${server.url}/_mock/revoke?athlete_id=1001`, { method: "POST" })
      assert.deepStrictEqual(JSON.parse(control.text), { revoked: true })
      const deliveries = yield* deliveriesOnceDone(mock)
      const posts = callback.received.filter((r) => r.method === "POST")
      assert.strictEqual(posts.length, 1)
      const event = JSON.parse(posts[0]!.body) as Simulator.PushEvent
      assert.isAtLeast(event.event_time, before)
      assert.isAtMost(event.event_time, Math.floor(Date.now() / 1000))
      assert.deepStrictEqual(event, {
        aspect_type: "update",
        event_time: event.event_time,
        object_id: 1001,
        object_type: "athlete",
        owner_id: 1001,
        subscription_id: id,
        updates: { authorized: "false" }
      })
      assert.deepStrictEqual(
        deliveries.map((d) => [d.attempt, d.copy, d.status, d.last, d.callbackUrl]),
        [[1, 1, 200, true, callback.url]]
      )
      assert.deepStrictEqual(deliveries[0]!.event, event)
      assert.deepStrictEqual(JSON.parse((yield* fetchText(`${server.url}/_mock/deliveries`)).text), deliveries)
    })))

  it.live("a callback answering 500 is tried three times in all, the retry gap apart, then given up", () =>
    Effect.scoped(Effect.gen(function*() {
      const callback = yield* callbackServer(() => ({ status: 500 }))
      const { mock, server } = yield* mockServer({ eventRetryDelayMillis: 50 })
      yield* subscribe(server.apiUrl, callback.url)
      const sent = yield* sendEvent(server.url, activityCreated)
      assert.strictEqual(sent.status, 200)
      const deliveries = yield* deliveriesOnceDone(mock)
      assert.deepStrictEqual(deliveries.map((d) => [d.attempt, d.status, d.last]), [
        [1, 500, false],
        [2, 500, false],
        [3, 500, true]
      ])
      assert.isAtLeast(deliveries[1]!.at - deliveries[0]!.at, 50)
      assert.isAtLeast(deliveries[2]!.at - deliveries[1]!.at, 50)
      assert.strictEqual(callback.received.filter((r) => r.method === "POST").length, 3)
    })))

  it.live("delivery stops at the first 200; a callback slower than the timeout counts as a failed attempt", () =>
    Effect.scoped(Effect.gen(function*() {
      const answers: Array<Answer> = ["hang", { status: 500 }, { status: 200 }]
      const callback = yield* callbackServer((i) => answers[i] ?? { status: 200 })
      const { mock, server } = yield* mockServer({ callbackTimeoutMillis: 300 })
      yield* subscribe(server.apiUrl, callback.url)
      yield* sendEvent(server.url, activityCreated)
      const deliveries = yield* deliveriesOnceDone(mock)
      assert.deepStrictEqual(deliveries.map((d) => [d.attempt, d.status, d.last]), [
        [1, "timeout", false],
        [2, 500, false],
        [3, 200, true]
      ])
      const stops = yield* callbackServer((i) => i === 0 ? { status: 500 } : { status: 200 })
      const second = yield* mockServer()
      yield* subscribe(second.server.apiUrl, stops.url)
      yield* sendEvent(second.server.url, activityCreated)
      const stopped = yield* deliveriesOnceDone(second.mock)
      assert.deepStrictEqual(stopped.map((d) => [d.attempt, d.status, d.last]), [[1, 500, false], [2, 200, true]])
      assert.strictEqual(stops.received.filter((r) => r.method === "POST").length, 2)
    })))

  it.live("with duplicateEvents every event is delivered twice, each copy in full", () =>
    Effect.scoped(Effect.gen(function*() {
      const callback = yield* callbackServer()
      const { mock, server } = yield* mockServer({ duplicateEvents: true })
      yield* subscribe(server.apiUrl, callback.url)
      yield* sendEvent(server.url, { ...activityCreated, aspect_type: "update", updates: { title: "Morning Ride" } })
      const deliveries = yield* deliveriesOnceDone(mock)
      assert.deepStrictEqual(deliveries.map((d) => [d.copy, d.attempt, d.status, d.last]), [
        [1, 1, 200, false],
        [2, 1, 200, true]
      ])
      const posts = callback.received.filter((r) => r.method === "POST").map((r) => r.body)
      assert.strictEqual(posts.length, 2)
      assert.strictEqual(posts[0], posts[1])
      assert.deepStrictEqual((JSON.parse(posts[0]!) as Simulator.PushEvent).updates, { title: "Morning Ride" })
    })))

  it.live("POST /_mock/events sends any event (subscription id and time added); without a subscription it is 409", () =>
    Effect.scoped(Effect.gen(function*() {
      const callback = yield* callbackServer()
      const { mock, server } = yield* mockServer()
      assert.strictEqual((yield* sendEvent(server.url, activityCreated)).status, 409)
      const { id } = JSON.parse((yield* subscribe(server.apiUrl, callback.url)).text) as { id: number }
      assert.strictEqual((yield* sendEvent(server.url, { ...activityCreated, object_type: "route" })).status, 400)
      assert.strictEqual((yield* sendEvent(server.url, { object_type: "activity", aspect_type: "create" })).status, 400)
      const sent = yield* sendEvent(server.url, { ...activityCreated, aspect_type: "delete", event_time: 1750000000 })
      const expected = {
        aspect_type: "delete",
        event_time: 1750000000,
        object_id: 9001,
        object_type: "activity",
        owner_id: 1001,
        subscription_id: id,
        updates: {}
      }
      assert.deepStrictEqual(JSON.parse(sent.text), { event: expected })
      yield* deliveriesOnceDone(mock)
      assert.deepStrictEqual(
        callback.received.filter((r) => r.method === "POST").map((r) => JSON.parse(r.body)),
        [expected]
      )
      assert.deepStrictEqual(JSON.parse((yield* fetchText(`${server.url}/_mock/events`)).text), [expected])
    })))
})

describe("strava-mock's flags for many athletes and webhooks", () => {
  it.live("--athletes, --athlete-cap, --duplicate-events and --event-retry-delay reach the server", () =>
    Effect.scoped(Effect.gen(function*() {
      const child = yield* Effect.acquireRelease(
        Effect.sync(() =>
          spawn(process.execPath, [
            bin,
            "--athletes",
            "3",
            "--athlete-cap",
            "1",
            "--duplicate-events",
            "--event-retry-delay",
            "50ms"
          ], { stdio: ["ignore", "pipe", "ignore"] })
        ),
        (child) =>
          Effect.async<void>((resume) => {
            if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
            child.once("exit", () => resume(Effect.void))
            child.kill("SIGTERM")
          })
      )
      const url = yield* Effect.promise(() =>
        new Promise<string>((resolve, reject) => {
          createInterface({ input: child.stdout! }).once("line", resolve)
          child.once("exit", (code) => reject(new Error(`strava-mock exited with ${code}`)))
        })
      )
      const query = (athleteId: string) =>
        new URLSearchParams({
          client_id: app.clientId,
          redirect_uri: "http://127.0.0.1:9/cb",
          response_type: "code",
          scope: "read",
          athlete_id: athleteId
        })
      const page = yield* fetchText(`${url}/oauth/authorize?${query("1001")}`)
      assert.strictEqual(page.text.match(/<option value="\d+"/g)?.length, 3)
      const form = query("1001")
      form.set("decision", "authorize")
      const accepted = yield* fetchText(`${url}/oauth/accept`, { method: "POST", body: form })
      const exchanged = yield* fetchText(`${url}/oauth/token`, {
        method: "POST",
        body: new URLSearchParams({
          ...credentials,
          code: new URL(accepted.headers.get("location")!).searchParams.get("code")!,
          grant_type: "authorization_code"
        })
      })
      assert.strictEqual(exchanged.status, 200)
      assert.strictEqual((yield* fetchText(`${url}/oauth/authorize?${query("1002")}`)).status, 403)

      const callback = yield* callbackServer((i) => i === 0 ? { status: 500 } : { status: 200 })
      assert.strictEqual((yield* subscribe(`${url}/api/v3`, callback.url)).status, 201)
      yield* sendEvent(url, activityCreated)
      const deliveries = yield* eventually(
        "both copies delivered",
        Effect.map(fetchText(`${url}/_mock/deliveries`), ({ text }) => {
          const log = JSON.parse(text) as Array<Simulator.Delivery>
          return log.some((d) => d.last) ? log : undefined
        })
      )
      // Copy 1: a 500, then the retry 50 ms later; copy 2: answered at once.
      assert.deepStrictEqual(deliveries.map((d) => [d.copy, d.attempt, d.status]), [[1, 1, 500], [1, 2, 200], [
        2,
        1,
        200
      ]])
      assert.isAtLeast(deliveries[1]!.at - deliveries[0]!.at, 50)
      assert.strictEqual(callback.received.filter((r) => r.method === "POST").length, 3)
    })))
})
