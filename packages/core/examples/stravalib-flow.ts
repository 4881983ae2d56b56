/**
 * stravalib's "Authenticate with the Strava API" guide, as one Effect program:
 * authorize URL → the athlete approves → exchange the code → check the token → refresh.
 *
 * Run it against Strava, or against the mock (`pnpm exec strava-mock` prints its URL):
 *
 *   STRAVA_CLIENT_ID=12345 STRAVA_CLIENT_SECRET=... [STRAVA_BASE_URL=http://127.0.0.1:PORT \
 *   STRAVA_API_URL=http://127.0.0.1:PORT/api/v3] pnpm exec tsx packages/core/examples/stravalib-flow.ts
 *
 * It prints the URL to open, then reads the address the browser ended on from stdin.
 */
import * as Terminal from "@effect/platform/Terminal"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Callback, OAuthState, StravaConfig, StravaOAuth } from "@strava-auth/core"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

const program = Effect.gen(function*() {
  const oauth = yield* StravaOAuth.StravaOAuth
  const terminal = yield* Terminal.Terminal

  // client.authorization_url(client_id, redirect_uri, scope=...)
  const state = yield* OAuthState.generate
  const url = yield* oauth.authorizeUrl({
    redirectUri: "http://127.0.0.1:8000/authorization",
    scope: ["read", "activity:read"],
    state
  })
  yield* Console.log(`Open this URL, press Authorize, then paste the address the browser ends on:\n${url}\n`)
  const redirect = yield* terminal.readLine

  // code = request.args.get("code"), with the CSRF check stravalib leaves to you
  const callback = yield* Callback.parse(redirect, { state, requiredScopes: ["activity:read"] })

  // client.exchange_code_for_token(client_id, client_secret, code)
  const tokens = yield* oauth.exchangeCode(callback)
  yield* Console.log(`Logged in; the token expires at ${new Date(tokens.expiresAt * 1000).toISOString()}`)

  // Client(access_token=...).get_athlete()
  const athlete = yield* oauth.getAthlete(tokens.accessToken)
  yield* Console.log(`Hello, ${athlete.firstname ?? "athlete"} ${athlete.lastname ?? ""} (${athlete.id})`)

  // client.refresh_access_token(client_id, client_secret, refresh_token)
  const refreshed = yield* oauth.refresh(tokens)
  yield* Console.log(
    refreshed.sameAccessToken(tokens)
      ? "Refreshed: Strava returned the same token (more than an hour was left)."
      : `Refreshed: a new token, expiring ${new Date(refreshed.expiresAt * 1000).toISOString()}`
  )
})

const MainLayer = StravaOAuth.layer.pipe(
  Layer.provide(StravaConfig.layerFromEnv),
  Layer.provide(NodeHttpClient.layerUndici),
  Layer.provideMerge(NodeContext.layer)
)

program.pipe(Effect.provide(MainLayer), NodeRuntime.runMain)
