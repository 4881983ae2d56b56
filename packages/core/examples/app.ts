/**
 * The README's library quick start: an app that owns its grant, with the auto-refreshing token source
 * under the authenticated client. It reads the token set the app saved after its login from a JSON file
 * (the `TokenSet` schema's encoding), prints the athlete, and saves the set back, because Strava may have
 * rotated the refresh token meanwhile (a rotation that is not saved is a lost grant).
 *
 *   STRAVA_CLIENT_ID=... STRAVA_CLIENT_SECRET=... pnpm exec tsx packages/core/examples/app.ts tokens.json
 *
 * Against the mock (`pnpm exec strava-mock` prints its URL), add `STRAVA_BASE_URL=http://127.0.0.1:PORT` and
 * `STRAVA_API_URL=http://127.0.0.1:PORT/api/v3`. `stravalib-flow.ts` shows the login that gives the set.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { GrantStore, StravaClient, StravaConfig, StravaOAuth, Token, TokenSource } from "@strava-auth/core"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"

const TokenSetJson = Schema.parseJson(Token.TokenSet)

const program = Effect.gen(function*() {
  const client = yield* StravaClient.StravaClient // adds the Bearer token; refreshes once on a 401
  const response = yield* client.get("/athlete")
  yield* Console.log(JSON.stringify(yield* response.json))
})

const AppLayer = (savedTokens: Token.TokenSet) =>
  StravaClient.layer.pipe(
    Layer.provide(TokenSource.layerRefreshing()), // refreshes within 45 minutes of expiry, single-flight
    Layer.provideMerge(GrantStore.layerMemory(savedTokens)), // a store keeps what the refresh rotates
    Layer.provide(StravaOAuth.layer),
    Layer.provideMerge(StravaConfig.layerFromEnv), // STRAVA_CLIENT_ID, STRAVA_CLIENT_SECRET(_FILE), URLs
    Layer.provide(NodeFileSystem.layer), // for STRAVA_CLIENT_SECRET_FILE
    Layer.provide(NodeHttpClient.layerUndici)
  )

const main = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const file = process.argv[2]
  if (file === undefined) return yield* Effect.dieMessage("usage: app.ts TOKENS.json (the token set saved at login)")
  const savedTokens = yield* Effect.flatMap(fs.readFileString(file), Schema.decode(TokenSetJson))
  yield* Effect.gen(function*() {
    yield* program
    // The set the store holds now, saved atomically (a temporary file renamed over the old one).
    const store = yield* GrantStore.GrantStore
    const current = Option.getOrThrow(yield* store.get(GrantStore.defaultKey))
    yield* fs.writeFileString(`${file}.tmp`, yield* Schema.encode(TokenSetJson)(current), { mode: 0o600 })
    yield* fs.rename(`${file}.tmp`, file)
  }).pipe(Effect.provide(AppLayer(savedTokens)))
})

main.pipe(Effect.provide(NodeFileSystem.layer), NodeRuntime.runMain)
