/**
 * Strava's push subscription callback, for any number of replicas.
 *
 * - `GET {path}`: Strava's validation. Answers `{"hub.challenge": ...}` when `hub.verify_token` matches the
 *   app's (compared in constant time), else 403.
 * - `POST {path}`: an event. It is decoded, stored durably in `strava_webhook_events` (unique on the event's
 *   identity, so a duplicate or a retry of Strava's collapses into one row that counts its deliveries) and
 *   answered 200 at once, well inside Strava's two seconds. Nothing else happens in the request.
 * - `processor`: a background fiber on every replica that claims stored events (`FOR UPDATE SKIP LOCKED`,
 *   with a lease, so one replica that dies after answering leaves its events to the others) and processes
 *   each once. It is woken at once when its own replica stores an event, and looks every `pollInterval`
 *   for the others'.
 *
 * Strava does not sign events, so an event alone never costs an athlete their grant:
 * - an event whose `subscription_id` is not the app's (when the app gives `subscriptionId`) is not stored;
 * - an athlete event with `authorized` false (Strava sends the string `"false"`; a boolean is accepted) removes
 *   the grant only once Strava confirms it: the grant's refresh is refused, or its valid token is refused by
 *   the API. An athlete still connected (a forged event, or one who reconnected since) keeps the grant.
 *
 * Every other event goes to the app's `onEvent`; a failure there is retried (up to `maxAttempts`).
 *
 * @since 0.3.0
 */
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as SqlClient from "@effect/sql/SqlClient"
import { GrantStore } from "@strava-auth/core/GrantStore"
import * as OAuthState from "@strava-auth/core/OAuthState"
import { StravaOAuth } from "@strava-auth/core/StravaOAuth"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"

import { Athletes } from "./Athletes.js"
import { sha256Hex } from "./TokenCipher.js"

/**
 * An event as Strava posts it.
 *
 * @since 0.3.0
 * @category models
 */
export const Event = Schema.Struct({
  object_type: Schema.String.pipe(Schema.maxLength(32)),
  object_id: Schema.Int,
  aspect_type: Schema.String.pipe(Schema.maxLength(32)),
  owner_id: Schema.Int,
  subscription_id: Schema.Int,
  event_time: Schema.Int,
  updates: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.Unknown }), { default: () => ({}) })
})

/**
 * @since 0.3.0
 * @category models
 */
export type Event = typeof Event.Type

/**
 * Whether an event says the athlete deauthorized the app.
 *
 * @since 0.3.0
 * @category predicates
 */
export const isDeauthorization = (event: Event): boolean =>
  event.object_type === "athlete" && (event.updates["authorized"] === "false" || event.updates["authorized"] === false)

/**
 * @since 0.3.0
 * @category models
 */
export interface Options {
  /** Where Strava calls. Default `/strava/webhook`. */
  readonly path?: string | undefined
  /** The `verify_token` given when the subscription was created (`STRAVA_WEBHOOK_VERIFY_TOKEN`). */
  readonly verifyToken: Redacted.Redacted<string>
  /** The app's subscription id, when known: events for another subscription are not stored. */
  readonly subscriptionId?: number | undefined
}

/**
 * @since 0.3.0
 * @category models
 */
export interface ProcessorOptions {
  /** Events other than deauthorizations. Default: stored and marked `ignored`. */
  readonly onEvent?: ((event: Event) => Effect.Effect<void, unknown>) | undefined
  /** How often to look for events stored by other replicas (or left by a dead one). Default 1 second. */
  readonly pollInterval?: Duration.DurationInput | undefined
  /** How long a claim holds before another replica may take the event. Default 30 seconds. */
  readonly lease?: Duration.DurationInput | undefined
  /** Attempts before an event is given up (`outcome` says why). Default 5. */
  readonly maxAttempts?: number | undefined
}

/** Sorted keys, so two deliveries of one event give one identity whatever their key order. */
const canonical = (value: unknown): string =>
  Array.isArray(value)
    ? `[${value.map(canonical).join(",")}]`
    : value !== null && typeof value === "object"
    ? `{${
      Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
        .join(",")
    }}`
    : JSON.stringify(value)

/**
 * The identity that makes a redelivery the same row.
 *
 * @since 0.3.0
 * @category models
 */
export const identityOf = (event: Event): Effect.Effect<string> =>
  sha256Hex(
    [
      event.subscription_id,
      event.owner_id,
      event.object_type,
      event.object_id,
      event.aspect_type,
      event.event_time,
      canonical(event.updates)
    ].join("\n")
  )

/**
 * Wakes this replica's processor when its own route stored an event.
 *
 * @since 0.3.0
 * @category models
 */
export interface Wakeup {
  readonly queue: Queue.Queue<void>
}

const json = (status: number, body: unknown) => HttpServerResponse.unsafeJson(body, { status })

/**
 * The callback's routes. Needs the `SqlClient`; `wakeup` (from `processor`) lets this replica process at once.
 *
 * @since 0.3.0
 * @category routes
 */
export const router = (options: Options, wakeup?: Wakeup) => {
  const path = (options.path ?? "/strava/webhook") as HttpRouter.PathInput

  const validate = Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const query = new URL(request.url, "http://x").searchParams
    const challenge = query.get("hub.challenge") ?? ""
    const token = query.get("hub.verify_token") ?? ""
    if (query.get("hub.mode") !== "subscribe" || challenge === "" || challenge.length > 256) {
      return json(400, { error: "expected hub.mode=subscribe and a hub.challenge" })
    }
    if (!OAuthState.equals(Redacted.value(options.verifyToken), token)) {
      yield* Effect.logWarning("a subscription validation with the wrong verify token was refused")
      return json(403, { error: "the verify token does not match" })
    }
    return json(200, { "hub.challenge": challenge })
  })

  const receive = Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const request = yield* HttpServerRequest.HttpServerRequest
    const body = yield* request.json.pipe(
      HttpIncomingMessage.withMaxBodySize(Option.some(16 * 1024)),
      Effect.option
    )
    const decoded = Option.flatMap(body, Schema.decodeUnknownOption(Event))
    if (Option.isNone(decoded)) {
      return json(400, { error: "not a Strava event: expected JSON with object_type, object_id, aspect_type, ..." })
    }
    const event = decoded.value
    if (options.subscriptionId !== undefined && event.subscription_id !== options.subscriptionId) {
      yield* Effect.logWarning("an event for another subscription was ignored").pipe(
        Effect.annotateLogs({ subscription_id: event.subscription_id })
      )
      return json(200, { stored: false })
    }
    const identity = yield* identityOf(event)
    const rows = yield* sql<{ readonly deliveries: number }>`INSERT INTO strava_webhook_events
        (identity, subscription_id, owner_id, object_type, object_id, aspect_type, event_time, updates)
      VALUES (${identity}, ${event.subscription_id}, ${event.owner_id}, ${event.object_type}, ${event.object_id},
        ${event.aspect_type}, ${event.event_time}, ${JSON.stringify(event.updates)}::jsonb)
      ON CONFLICT (identity) DO UPDATE SET deliveries = strava_webhook_events.deliveries + 1
      RETURNING deliveries`
    if (wakeup !== undefined) yield* Queue.offer(wakeup.queue, undefined)
    return json(200, { stored: true, duplicate: (rows[0]?.deliveries ?? 1) > 1 })
  }).pipe(
    Effect.catchTag("SqlError", () =>
      // Not stored: a 503 makes Strava deliver it again (three attempts in all).
      Effect.succeed(json(503, { error: "the event could not be stored; deliver it again" })))
  )

  return HttpRouter.empty.pipe(HttpRouter.get(path, validate), HttpRouter.post(path, receive))
}

const StoredEvent = Schema.Struct({
  id: Schema.NumberFromString,
  attempts: Schema.Number,
  subscription_id: Schema.NullOr(Schema.NumberFromString),
  owner_id: Schema.NumberFromString,
  object_type: Schema.String,
  object_id: Schema.NumberFromString,
  aspect_type: Schema.String,
  event_time: Schema.NumberFromString,
  updates: Schema.Record({ key: Schema.String, value: Schema.Unknown })
})

/** What processing an event came to; `undefined`: try again later. */
type Outcome = string | undefined

/**
 * Processes one deauthorization: the grant is removed only once Strava confirms it is dead.
 *
 * @since 0.3.0
 * @category processing
 */
export const confirmDeauthorization = (
  athleteId: number
): Effect.Effect<Outcome, never, Athletes | GrantStore | StravaOAuth> =>
  Effect.gen(function*() {
    const athletes = yield* Athletes
    const store = yield* GrantStore
    const oauth = yield* StravaOAuth
    const key = String(athleteId)
    // The grant as it is before the check: only this one may be removed (a reconnect meanwhile is kept).
    const before = yield* store.get(key).pipe(Effect.either)
    if (before._tag === "Left") return undefined // the store did not answer: try again
    if (Option.isNone(before.right)) return "no grant stored"
    const seen = before.right.value
    const tokens = yield* Effect.either(athletes.tokensFor(key))
    if (tokens._tag === "Left") {
      // A refresh token Strava refuses, or a grant the engine already found dead, is the confirmation.
      const dead = tokens.left._tag === "InvalidGrant" || tokens.left._tag === "LoginRequired"
      if (!dead) return undefined // Strava or the store did not answer: try again
    } else {
      const check = yield* Effect.either(oauth.getAthlete(tokens.right.accessToken))
      if (check._tag === "Right") return "kept: Strava still accepts the athlete's token"
      if (check.left._tag !== "Unauthorized") return undefined
    }
    const confirmed = tokens._tag === "Right" ? tokens.right : seen
    // Confirmed: the grant's tokens are refused. Remove it, unless a new connect replaced it meanwhile.
    const removed = yield* store.withLock(
      key,
      Effect.gen(function*() {
        const now = yield* store.get(key)
        if (Option.isNone(now)) return "no grant stored"
        if (!now.value.sameRefreshToken(confirmed)) return "kept: reconnected"
        yield* store.remove(key)
        return "removed"
      })
    ).pipe(Effect.orElseSucceed(() => undefined))
    if (removed === "removed") {
      yield* athletes.engine.sync(key)
      yield* Effect.logInfo("athlete deauthorized the app; grant removed").pipe(
        Effect.annotateLogs({ athlete_id: key })
      )
    }
    return removed
  }).pipe(Effect.withSpan("Webhook.confirmDeauthorization", { attributes: { athlete_id: String(athleteId) } }))

/**
 * Starts this replica's processor (a fiber in the scope) and returns the `Wakeup` for its `router`.
 *
 * @since 0.3.0
 * @category processing
 */
export const processor = (
  options: ProcessorOptions = {}
): Effect.Effect<Wakeup, never, SqlClient.SqlClient | Athletes | GrantStore | StravaOAuth | Scope.Scope> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const queue = yield* Queue.sliding<void>(1)
    const leaseSeconds = Math.max(1, Math.round(Duration.toSeconds(options.lease ?? Duration.seconds(30))))
    const maxAttempts = options.maxAttempts ?? 5

    const claim = sql`UPDATE strava_webhook_events SET claimed_until = now() + make_interval(secs => ${leaseSeconds}),
        attempts = attempts + 1
      WHERE id IN (SELECT id FROM strava_webhook_events
        WHERE processed_at IS NULL AND (claimed_until IS NULL OR claimed_until < now())
        ORDER BY id LIMIT 20 FOR UPDATE SKIP LOCKED)
      RETURNING id::text AS id, attempts, subscription_id::text AS subscription_id, owner_id::text AS owner_id,
        object_type, object_id::text AS object_id, aspect_type, event_time::text AS event_time, updates`

    const finish = (id: number, outcome: string) =>
      sql`UPDATE strava_webhook_events SET processed_at = now(), outcome = ${outcome}, claimed_until = NULL
        WHERE id = ${id}`

    const handle = (stored: typeof StoredEvent.Type) =>
      Effect.gen(function*() {
        const event: Event = {
          object_type: stored.object_type,
          object_id: stored.object_id,
          aspect_type: stored.aspect_type,
          owner_id: stored.owner_id,
          subscription_id: stored.subscription_id ?? 0,
          event_time: stored.event_time,
          updates: stored.updates
        }
        let outcome: Outcome
        if (isDeauthorization(event)) {
          outcome = yield* confirmDeauthorization(event.owner_id)
        } else if (options.onEvent === undefined) {
          outcome = "ignored: no handler"
        } else {
          // A failure or a defect of the app's handler: tried again at a later pass.
          const result = yield* Effect.exit(Effect.suspend(() => options.onEvent!(event)))
          if (result._tag === "Failure") {
            yield* Effect.logWarning("the app's event handler failed; the event is tried again").pipe(
              Effect.annotateLogs({ event_id: stored.id, attempt: stored.attempts })
            )
          }
          outcome = result._tag === "Success" ? "handled" : undefined
        }
        if (outcome !== undefined) yield* finish(stored.id, outcome)
        else if (stored.attempts >= maxAttempts) yield* finish(stored.id, `given up after ${stored.attempts} attempts`)
        // Else the lease runs out: another pass (here or on another replica) tries again.
      })

    const pass = Effect.gen(function*() {
      const rows = yield* claim
      for (const row of rows) {
        const stored = Schema.decodeUnknownOption(StoredEvent)(row)
        if (Option.isSome(stored)) yield* handle(stored.value)
      }
      return rows.length
    }).pipe(
      // Nothing stops the processor: a database error or anything unexpected is logged, and the next pass runs.
      Effect.catchAllCause((cause) =>
        Effect.as(
          Effect.logWarning("webhook events could not be processed now").pipe(
            Effect.annotateLogs({ error: Cause.pretty(cause).split("\n")[0] ?? "" })
          ),
          0
        )
      ),
      Effect.withSpan("Webhook.process")
    )

    const interval = options.pollInterval ?? Duration.seconds(1)
    // A full batch: go again at once; else wait for a wakeup or the poll interval.
    const loop = Effect.gen(function*() {
      const claimed = yield* pass
      if (claimed < 20) yield* Effect.race(Queue.take(queue), Effect.sleep(interval))
    }).pipe(Effect.repeat(Schedule.forever))
    yield* Effect.forkScoped(loop)
    return { queue }
  })
