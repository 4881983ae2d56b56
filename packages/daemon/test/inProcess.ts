// The daemon's in-process pieces against the in-process mock Strava, with real files.
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Callback, OAuthState, StravaConfig, StravaOAuth } from "@strava-auth/core"
import { MockStrava, Simulator } from "@strava-auth/testing"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

export const TestLayer = StravaOAuth.layer.pipe(
  Layer.provideMerge(MockStrava.layerClient()),
  Layer.provideMerge(StravaConfig.layer({
    clientId: Simulator.defaultApp.clientId,
    clientSecret: Simulator.defaultApp.clientSecret,
    retries: 0
  })),
  Layer.provideMerge(NodeFileSystem.layer)
)

/** A login as the athlete at the in-process mock: the token set to write. */
export const login = Effect.gen(function*() {
  const oauth = yield* StravaOAuth.StravaOAuth
  const mock = yield* MockStrava.MockStrava
  const state = yield* OAuthState.generate
  const url = yield* oauth.authorizeUrl({ redirectUri: "http://127.0.0.1/authorization", state })
  return yield* oauth.exchangeCode(yield* Callback.parse(yield* mock.approve(url), { state }))
})
