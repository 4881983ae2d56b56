/**
 * The example web app: stravalib's Flask example, in Effect, for many athletes on many replicas.
 *
 * - `GET /`: a page with "Connect with Strava", how many athletes are connected, and the connected athletes.
 * - `GET /strava/connect`, `GET /strava/callback`, `POST /strava/disconnect`: `Connect.router`.
 * - `GET /athletes/:id`: Strava's `GET /athlete` fetched with that athlete's token, as JSON. 404 when the
 *   athlete is not connected, 409 when the grant needs a new connect, 429 with `Retry-After` when the app's
 *   rate budget is spent, 503 when the database does not answer.
 * - `GET`/`POST /strava/webhook`: `Webhook.router`, with this replica's processor.
 *
 * As a demo, `/athletes/:id` and the disconnect button are open to any visitor: a real app puts its own
 * authorization in front of them (`Connect.Options.mayDisconnect`).
 *
 * @since 0.3.0
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { GrantStore } from "@strava-auth/core/GrantStore"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"

import { Athletes } from "../Athletes.js"
import * as Connect from "../Connect.js"
import * as Page from "../Page.js"
import { SqlGrants } from "../SqlGrantStore.js"
import * as Webhook from "../Webhook.js"

/**
 * @since 0.3.0
 * @category models
 */
export interface Options {
  readonly publicUrl: string
  readonly webhookVerifyToken: Redacted.Redacted<string>
  readonly webhookSubscriptionId?: number | undefined
  readonly webhookPollInterval?: Duration.DurationInput | undefined
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  HttpServerResponse.unsafeJson(body, { status, headers: { "cache-control": "no-store", ...headers } })

const home = Effect.gen(function*() {
  const grants = yield* SqlGrants
  const count = yield* grants.count
  const list = yield* grants.summaries(200)
  const items = list.map((g) => {
    const name = [g.athlete?.firstname, g.athlete?.lastname].filter((s) => s != null && s !== "").join(" ")
    const id = Page.escape(g.athleteId)
    return `<li class="athlete" data-athlete-id="${id}"><strong>${Page.escape(name || "Athlete")}</strong> (${id})
  <a href="/athletes/${id}">profile (JSON)</a>
  <form method="post" action="/strava/disconnect" style="display:inline"><input type="hidden" name="athlete_id" value="${id}"><button>Disconnect</button></form></li>`
  }).join("\n")
  return HttpServerResponse.text(
    `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>strava-auth example</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}
#connect{display:inline-block;background:#fc4c02;color:#fff;padding:.6rem 1.2rem;text-decoration:none;border-radius:4px}
li{margin:.5rem 0}</style></head>
<body>
<h1>strava-auth example</h1>
<p><a id="connect" href="/strava/connect">Connect with Strava</a></p>
<p id="count">${count} athlete${count === 1 ? "" : "s"} connected.</p>
<ul id="athletes">
${items}
</ul>
<p><small>A demo: every visitor sees every athlete here. A real app shows each user their own.</small></p>
</body>
</html>
`,
    { contentType: "text/html; charset=utf-8", headers: { "cache-control": "no-store" } }
  )
}).pipe(
  Effect.catchTag("GrantStoreError", () =>
    Effect.succeed(Page.render({
      status: 503,
      title: "Try again in a moment",
      detail: "The app could not reach its database. Reload this page in a moment."
    })))
)

const athlete = Effect.gen(function*() {
  const { id } = yield* HttpRouter.params
  const athletes = yield* Athletes
  const store = yield* GrantStore
  const client = yield* athletes.clientFor(id ?? "")
  const result = yield* Effect.either(
    client.get("/athlete").pipe(
      Effect.flatMap((response) => Effect.map(response.text, (body) => ({ status: response.status, body }))),
      Effect.scoped
    )
  )
  if (result._tag === "Right") {
    const { body, status } = result.right
    if (status === 200) {
      return HttpServerResponse.text(body, { status: 200, contentType: "application/json" })
    }
    if (status === 401) {
      return json(409, { error: "Strava refused this athlete's token: the athlete has to connect again" })
    }
    return json(502, { error: `Strava answered ${status}` })
  }
  const error = result.left
  switch (error._tag) {
    case "LoginRequired": {
      const stored = yield* store.get(id ?? "")
      return Option.isNone(stored)
        ? json(404, { error: `athlete ${id} is not connected` })
        : json(409, { error: "this athlete's grant is no longer valid: they have to connect again" })
    }
    case "InvalidGrant":
      return json(409, { error: "this athlete's grant is no longer valid: they have to connect again" })
    case "RateLimited":
      return json(429, { error: error.message }, {
        "retry-after": String(Math.max(1, Math.ceil((error.retryAt - Date.now()) / 1000)))
      })
    case "GrantStoreError":
      return json(503, { error: "the app's database did not answer; try again in a moment" })
    case "TokenUnavailable":
    case "GrantUnsaved":
    case "RefreshAborted":
      return json(503, { error: error.message })
    default:
      return json(502, { error: error.message })
  }
}).pipe(
  Effect.catchTags({
    InvalidAthleteId: (error) => Effect.succeed(json(400, { error: error.message })),
    GrantStoreError: () =>
      Effect.succeed(json(503, { error: "the app's database did not answer; try again in a moment" }))
  })
)

/**
 * The app's routes, with this replica's webhook processor started in the scope.
 *
 * @since 0.3.0
 * @category routes
 */
export const make = (options: Options) =>
  Effect.gen(function*() {
    const wakeup = yield* Webhook.processor({ pollInterval: options.webhookPollInterval })
    return HttpRouter.empty.pipe(
      HttpRouter.get("/", home),
      HttpRouter.get("/athletes/:id", athlete),
      HttpRouter.concat(
        Connect.router({
          publicUrl: options.publicUrl,
          // The demo lets any visitor disconnect any athlete; a real app checks that the user owns it.
          mayDisconnect: () => Effect.succeed(true)
        })
      ),
      HttpRouter.concat(
        Webhook.router({
          verifyToken: options.webhookVerifyToken,
          subscriptionId: options.webhookSubscriptionId
        }, wakeup)
      )
    )
  })
