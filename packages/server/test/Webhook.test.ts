import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import * as Callback from "@strava-auth/core/Callback"
import { GrantStore } from "@strava-auth/core/GrantStore"
import { StravaOAuth } from "@strava-auth/core/StravaOAuth"
import { Simulator } from "@strava-auth/testing"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"

import { Athletes } from "../src/Athletes.js"
import * as Webhook from "../src/Webhook.js"
import { freshDatabase, mockServer, serveReplica, within } from "./fixtures.js"

const athletes: ReadonlyArray<Simulator.Athlete> = [7001, 7002].map((id) => ({
  ...Simulator.defaultAthlete,
  id,
  username: `athlete${id}`,
  firstname: `First${id}`
}))

const verifyToken = Redacted.make("verify-me")
const subscriptionId = 4242

const setup = (
  options: {
    readonly processorA?: Webhook.ProcessorOptions | false
    readonly processorB?: Webhook.ProcessorOptions | false
  } = {}
) =>
  Effect.gen(function*() {
    const { mock, server } = yield* mockServer({ athletes })
    const database = yield* freshDatabase
    const router = (_: string, wakeup: Webhook.Wakeup | undefined) =>
      Webhook.router({ verifyToken, subscriptionId }, wakeup)
    const replica = (processor: Webhook.ProcessorOptions | false | undefined) =>
      serveReplica({
        database,
        mock: server,
        app: mock.app,
        router,
        ...(processor === false ? {} : { processor: processor ?? {} })
      })
    const a = yield* replica(options.processorA)
    const b = yield* replica(options.processorB)
    /** Connects an athlete through replica A's services. */
    const connect = (athleteId: number) =>
      Effect.gen(function*() {
        const oauth = Context.get(a.context, StravaOAuth)
        const url = yield* oauth.authorizeUrl({ redirectUri: "http://localhost/cb", state: "s", scope: ["read"] })
        const redirect = yield* mock.approve(url, { athleteId })
        const tokens = yield* oauth.exchangeCode(yield* Callback.parse(redirect, { state: "s" }))
        yield* Context.get(a.context, GrantStore).put(String(athleteId), tokens)
      }).pipe(Effect.orDie)
    const sql = Context.get(a.context, SqlClient.SqlClient)
    const events = sql<{ deliveries: number; outcome: string | null }>`SELECT deliveries, outcome
      FROM strava_webhook_events ORDER BY id`.pipe(Effect.orDie)
    return { mock, a, b, connect, events, sql }
  })

const post = (url: string, body: unknown) =>
  Effect.promise(() =>
    fetch(`${url}/strava/webhook`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: typeof body === "string" ? body : JSON.stringify(body)
    }).then(
      async (r) => ({ status: r.status, body: await r.text() }),
      // The server answered before the whole body was sent, and closed (an oversized body).
      () => ({ status: 0, body: "" })
    )
  )

const deauthorization = (athleteId: number, authorized: unknown = "false") => ({
  aspect_type: "update",
  event_time: 1_767_000_000,
  object_id: athleteId,
  object_type: "athlete",
  owner_id: athleteId,
  subscription_id: subscriptionId,
  updates: { authorized }
})

describe("The deauthorization webhook on two replicas", () => {
  it.live("GET answers Strava's challenge only with the right verify token", () =>
    Effect.gen(function*() {
      const { a } = yield* setup({ processorA: false, processorB: false })
      const get = (query: string) =>
        Effect.promise(() =>
          fetch(`${a.url}/strava/webhook?${query}`).then(async (r) => ({ status: r.status, body: await r.text() }))
        )
      const ok = yield* get("hub.mode=subscribe&hub.challenge=abc123&hub.verify_token=verify-me")
      assert.strictEqual(ok.status, 200)
      assert.deepStrictEqual(JSON.parse(ok.body), { "hub.challenge": "abc123" })
      assert.strictEqual((yield* get("hub.mode=subscribe&hub.challenge=abc123&hub.verify_token=wrong")).status, 403)
      assert.strictEqual((yield* get("hub.mode=subscribe&hub.verify_token=verify-me")).status, 400)
    }).pipe(Effect.scoped))

  it.live("a deauthorization delivered to replica B removes the grant for replica A within 2 seconds", () =>
    Effect.gen(function*() {
      const { a, b, connect, events, mock } = yield* setup()
      yield* connect(7001)
      const athletesA = Context.get(a.context, Athletes)
      yield* athletesA.tokenFor(7001) // replica A holds the grant in its engine
      yield* mock.revokeAthlete(7001) // on strava.com
      const started = Date.now()
      const answer = yield* post(b.url, deauthorization(7001))
      assert.strictEqual(answer.status, 200)
      const gone = yield* within(
        2000,
        Effect.map(Effect.either(athletesA.tokenFor(7001)), (r) => r._tag === "Left" && r.left._tag === "LoginRequired")
      )
      assert.isTrue(gone, "the grant was not removed within 2 seconds")
      assert.isBelow(Date.now() - started, 2000)
      // The event's outcome is written just after the removal commits: wait for it, then check it.
      yield* within(2000, Effect.map(events, (es) => es.length === 1 && es[0]!.outcome !== null))
      assert.deepStrictEqual((yield* events).map((e) => e.outcome), ["removed"])
    }).pipe(Effect.scoped))

  it.live("a forged deauthorization for a connected athlete removes nothing (Strava still accepts the token)", () =>
    Effect.gen(function*() {
      const { a, connect, events } = yield* setup()
      yield* connect(7002)
      assert.strictEqual((yield* post(a.url, deauthorization(7002, false))).status, 200)
      assert.isTrue(yield* within(2000, Effect.map(events, (rows) => rows[0]?.outcome !== null)))
      assert.deepStrictEqual((yield* events).map((e) => e.outcome), ["kept: Strava still accepts the athlete's token"])
      const store = Context.get(a.context, GrantStore)
      assert.isTrue(Option.isSome(yield* store.get("7002")))
    }).pipe(Effect.scoped))

  it.live("duplicates collapse into one stored event; other subscriptions and garbage are not stored", () =>
    Effect.gen(function*() {
      const { a, b, events } = yield* setup({ processorA: false, processorB: false })
      const event = { ...deauthorization(7001), updates: { authorized: "false", extra: { b: 1, a: 2 } } }
      assert.strictEqual((yield* post(a.url, event)).status, 200)
      // The same event again, to the other replica, with its keys in another order.
      const reordered = { ...event, updates: { extra: { a: 2, b: 1 }, authorized: "false" } }
      const again = yield* post(b.url, reordered)
      assert.strictEqual(again.status, 200)
      assert.deepStrictEqual(JSON.parse(again.body), { stored: true, duplicate: true })
      assert.deepStrictEqual((yield* events).map((e) => e.deliveries), [2])
      assert.strictEqual((yield* post(a.url, { ...event, subscription_id: 1 })).status, 200)
      assert.strictEqual((yield* post(a.url, "{not json")).status, 400)
      assert.strictEqual((yield* post(a.url, { object_type: "athlete" })).status, 400)
      const huge = yield* post(a.url, JSON.stringify({ ...event, updates: { title: "x".repeat(20_000) } }))
      assert.include([0, 400, 413], huge.status)
      assert.strictEqual((yield* events).length, 1)
    }).pipe(Effect.scoped))

  it.live("an event stored by a replica that never processes it is processed by another", () =>
    Effect.gen(function*() {
      const { a, b, connect, events, mock } = yield* setup({
        processorA: false, // A answers and dies before processing
        processorB: { pollInterval: "100 millis" }
      })
      void b
      yield* connect(7001)
      yield* mock.revokeAthlete(7001)
      assert.strictEqual((yield* post(a.url, deauthorization(7001))).status, 200)
      assert.isTrue(yield* within(3000, Effect.map(events, (rows) => rows[0]?.outcome === "removed")))
    }).pipe(Effect.scoped))

  it.live("an event claimed by a replica that died is processed by another once the claim's lease runs out", () =>
    Effect.gen(function*() {
      const { a, connect, events, mock, sql } = yield* setup({
        processorA: false,
        processorB: { pollInterval: "100 millis" }
      })
      yield* connect(7001)
      yield* mock.revokeAthlete(7001)
      // A stored the event and claimed it (as its processor does), then died: the claim holds for a second.
      assert.strictEqual((yield* post(a.url, deauthorization(7001))).status, 200)
      yield* sql`UPDATE strava_webhook_events SET claimed_until = now() + interval '1 second', attempts = 1`.pipe(
        Effect.orDie
      )
      const claimedAt = Date.now()
      assert.isTrue(yield* within(5000, Effect.map(events, (rows) => rows[0]?.outcome === "removed")))
      assert.isAtLeast(Date.now() - claimedAt, 900, "not taken before the lease ran out")
    }).pipe(Effect.scoped))

  it.live("the app's handler gets other events; one that fails or throws is tried again, and the processor goes on", () =>
    Effect.gen(function*() {
      const seen: Array<number> = []
      let failures = 0
      const { a, events } = yield* setup({
        processorA: {
          pollInterval: "100 millis",
          lease: "1 second",
          onEvent: (event) =>
            Effect.suspend(() => {
              if (event.object_id === 1 && failures === 0) {
                failures++
                throw new Error("the app's handler blew up")
              }
              if (event.object_id === 2 && failures === 1) {
                failures++
                return Effect.fail("a typed failure")
              }
              seen.push(event.object_id)
              return Effect.void
            })
        },
        processorB: false
      })
      const activity = (id: number) => ({
        aspect_type: "create",
        event_time: 1_767_000_000 + id,
        object_id: id,
        object_type: "activity",
        owner_id: 7001,
        subscription_id: subscriptionId,
        updates: {}
      })
      for (const id of [1, 2, 3]) assert.strictEqual((yield* post(a.url, activity(id))).status, 200)
      assert.isTrue(
        yield* within(
          8000,
          Effect.map(events, (rows) => rows.length === 3 && rows.every((r) => r.outcome === "handled"))
        )
      )
      assert.deepStrictEqual([...seen].sort(), [1, 2, 3])
      assert.strictEqual(failures, 2)
    }).pipe(Effect.scoped))
})
