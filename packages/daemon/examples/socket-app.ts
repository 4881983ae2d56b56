/**
 * An Effect app that calls Strava's API with the token the strava-auth daemon serves on its socket.
 * The app never refreshes: the daemon owns the grant.
 *
 *   pnpm exec tsx packages/daemon/examples/socket-app.ts
 *
 * (with STRAVA_AUTH_SOCKET and STRAVA_API_URL as the daemon's; `pnpm start` runs a daemon against the mock).
 */
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { StravaClient, StravaConfig } from "@strava-auth/core"
import { DaemonTokenSource, Paths } from "@strava-auth/daemon"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"

const Athlete = Schema.Struct({ id: Schema.Number, firstname: Schema.optional(Schema.NullOr(Schema.String)) })

const program = Effect.gen(function*() {
  const client = yield* StravaClient.StravaClient
  const athlete = yield* client.get("/athlete").pipe(Effect.flatMap(HttpClientResponse.schemaBodyJson(Athlete)))
  yield* Console.log(`Hello, ${athlete.firstname ?? "athlete"} (${athlete.id})`)
})

const socket = process.env["STRAVA_AUTH_SOCKET"] ?? Paths.defaultSocket(Paths.current())
// The app holds no client secret: the daemon owns the grant; the client needs only the API base.
const MainLayer = StravaClient.layerWith({ apiUrl: process.env["STRAVA_API_URL"] ?? StravaConfig.defaultApiUrl }).pipe(
  Layer.provide(DaemonTokenSource.layerSocket(socket)),
  Layer.provide(NodeHttpClient.layerUndici)
)

program.pipe(Effect.provide(MainLayer), NodeRuntime.runMain)
