/**
 * The README's library quick start, type-checked: an app that owns its grant, with the auto-refreshing
 * token source under the authenticated client.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import type { Token } from "@strava-auth/core"
import { StravaClient, StravaConfig, StravaOAuth, TokenSource, TokenStore } from "@strava-auth/core"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

// A TokenSet your app saved after its login (see stravalib-flow.ts); a real app loads it from its store.
declare const savedTokens: Token.TokenSet

const program = Effect.gen(function*() {
  const client = yield* StravaClient.StravaClient // adds the Bearer token; refreshes once on a 401
  const response = yield* client.get("/athlete")
  yield* Console.log(yield* response.json)
})

const AppLayer = StravaClient.layer.pipe(
  Layer.provide(TokenSource.layerRefreshing()), // refreshes within 45 minutes of expiry, single-flight
  Layer.provide(TokenStore.layerMemory(savedTokens)), // or a file: TokenFile.layerStore(path) from the daemon
  Layer.provide(StravaOAuth.layer),
  Layer.provideMerge(StravaConfig.layerFromEnv), // STRAVA_CLIENT_ID, STRAVA_CLIENT_SECRET(_FILE), URLs
  Layer.provide(NodeFileSystem.layer), // for STRAVA_CLIENT_SECRET_FILE
  Layer.provide(NodeHttpClient.layerUndici)
)

program.pipe(Effect.provide(AppLayer), NodeRuntime.runMain)
