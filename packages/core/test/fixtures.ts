import type * as HttpClient from "@effect/platform/HttpClient"
import { MockStrava, Simulator } from "@strava-auth/testing"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

import * as Callback from "../src/Callback.js"
import * as OAuthState from "../src/OAuthState.js"
import * as StravaConfig from "../src/StravaConfig.js"
import * as StravaOAuth from "../src/StravaOAuth.js"
import type { StravaScope } from "../src/StravaScope.js"

export const app = Simulator.defaultApp

export const configFor = (input: Partial<StravaConfig.Input> = {}) =>
  StravaConfig.layer({ clientId: app.clientId, clientSecret: app.clientSecret, retries: 0, ...input })

/** The service against a fresh in-process mock Strava, plus the mock and the client under it. */
export const layer = (
  options: { readonly mock?: MockStrava.Options; readonly config?: Partial<StravaConfig.Input> } = {}
): Layer.Layer<StravaOAuth.StravaOAuth | StravaConfig.StravaConfig | MockStrava.MockStrava | HttpClient.HttpClient> =>
  StravaOAuth.layer.pipe(
    Layer.provideMerge(Layer.merge(MockStrava.layerClient(options.mock), configFor(options.config)))
  )

/** The whole login as an app does it: URL, the athlete's decision at the mock, callback, exchange. */
export const login = (
  options: {
    readonly scope?: ReadonlyArray<StravaScope>
    readonly grant?: ReadonlyArray<string>
    /** Who presses Authorize; default the mock's first athlete. */
    readonly athleteId?: number
  } = {}
) =>
  Effect.gen(function*() {
    const oauth = yield* StravaOAuth.StravaOAuth
    const mock = yield* MockStrava.MockStrava
    const state = yield* OAuthState.generate
    const url = yield* oauth.authorizeUrl({
      redirectUri: "http://localhost:8123/authorization",
      state,
      scope: options.scope
    })
    const redirect = yield* mock.approve(url, {
      ...(options.grant === undefined ? {} : { scopes: options.grant }),
      ...(options.athleteId === undefined ? {} : { athleteId: options.athleteId })
    })
    const callback = yield* Callback.parse(redirect, { state })
    return yield* oauth.exchangeCode(callback)
  })
