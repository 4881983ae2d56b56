import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { assert, describe, it } from "@effect/vitest"
import { MockStrava } from "@strava-auth/testing"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"

import * as GrantStore from "../src/GrantStore.js"
import * as StravaClient from "../src/StravaClient.js"
import * as StravaError from "../src/StravaError.js"
import type { StravaScope } from "../src/StravaScope.js"
import * as TokenSource from "../src/TokenSource.js"
import { layer, login } from "./fixtures.js"

const AppLayer = (scope?: ReadonlyArray<StravaScope>) =>
  Layer.unwrapEffect(
    Effect.map(login({ ...(scope === undefined ? {} : { scope }) }), (tokens) =>
      StravaClient.layer.pipe(
        Layer.provideMerge(TokenSource.layerRefreshing()),
        Layer.provideMerge(GrantStore.layerMemory(tokens))
      ))
  ).pipe(Layer.provideMerge(layer()))

const Athlete = Schema.Struct({ id: Schema.Number })

describe("StravaClient", () => {
  it.effect("resolves relative URLs against the API base and adds the bearer token", () =>
    Effect.gen(function*() {
      const client = yield* StravaClient.StravaClient
      const athlete = yield* client.get("/athlete").pipe(Effect.flatMap(HttpClientResponse.schemaBodyJson(Athlete)))
      assert.strictEqual(athlete.id, 1001)
    }).pipe(Effect.provide(AppLayer())))

  it.effect("on 401 Athlete/access_token/invalid it refreshes once and retries once", () =>
    Effect.gen(function*() {
      const client = yield* StravaClient.StravaClient
      const mock = yield* MockStrava.MockStrava
      yield* mock.expireAccessTokens() // Strava-side: our stored expiry still says 6 hours
      const response = yield* client.get("/athlete")
      assert.strictEqual(response.status, 200)
      const log = yield* mock.log
      assert.strictEqual(log.filter((e) => e.grantType === "refresh_token").length, 1)
      assert.deepStrictEqual(log.filter((e) => e.endpoint === "athlete").map((e) => e.status), [401, 200])
    }).pipe(Effect.provide(AppLayer())))

  it.effect("a revoked grant: one refresh attempt, then the InvalidGrant error, no loop", () =>
    Effect.gen(function*() {
      const client = yield* StravaClient.StravaClient
      const mock = yield* MockStrava.MockStrava
      yield* mock.revokeAthlete()
      const error = yield* Effect.flip(client.get("/athlete"))
      assert.strictEqual(error._tag, "InvalidGrant")
      assert.strictEqual((yield* mock.log).filter((e) => e.grantType === "refresh_token").length, 1)
    }).pipe(Effect.provide(AppLayer())))

  it.effect("a 401 for a missing scope is returned as is, without a refresh", () =>
    Effect.gen(function*() {
      const client = yield* StravaClient.StravaClient
      const mock = yield* MockStrava.MockStrava
      const response = yield* client.get("/athlete/activities")
      assert.strictEqual(response.status, 401)
      const error = StravaError.fromResponse({
        endpoint: "api",
        status: response.status,
        headers: response.headers,
        body: yield* response.text,
        nowMillis: 0
      })
      assert.strictEqual(error._tag, "MissingScope")
      assert.strictEqual(error._tag === "MissingScope" && error.scope, "activity:read")
      assert.strictEqual((yield* mock.log).filter((e) => e.grantType === "refresh_token").length, 0)
    }).pipe(Effect.provide(AppLayer(["read"]))))
})
