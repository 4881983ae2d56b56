// Exchange and refresh through StravaOAuth (Effect, undici) vs the same request with plain fetch, against
// the mock server in this process. Alternating blocks; the median of each side's per-call times.
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Callback, OAuthState, StravaConfig, StravaOAuth } from "@strava-auth/core"
import { MockServer, Simulator } from "@strava-auth/testing"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

export const run = async (iterations) => {
  const app = Simulator.defaultApp
  const scope = Effect.runSync(Scope.make())
  const { mock, server } = await Effect.runPromise(Effect.provideService(MockServer.make(), Scope.Scope, scope))
  const runtime = ManagedRuntime.make(
    StravaOAuth.layer.pipe(
      Layer.provide(
        StravaConfig.layer({
          clientId: app.clientId,
          clientSecret: app.clientSecret,
          baseUrl: server.url,
          apiUrl: server.apiUrl,
          retries: 0
        })
      ),
      Layer.provide(NodeHttpClient.layerUndici)
    )
  )
  const oauth = await runtime.runPromise(StravaOAuth.StravaOAuth)
  const newCode = async () => {
    const state = await Effect.runPromise(OAuthState.generate)
    const url = await runtime.runPromise(oauth.authorizeUrl({ redirectUri: "http://127.0.0.1/cb", state }))
    const redirect = await Effect.runPromise(mock.approve(url))
    return Redacted.value((await Effect.runPromise(Callback.parse(redirect, { state }))).code)
  }
  const fetchToken = async (params) => {
    const response = await fetch(`${server.url}/oauth/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body: new URLSearchParams({ client_id: app.clientId, client_secret: app.clientSecret, ...params })
    })
    if (!response.ok) throw new Error(`fetch: ${response.status}`)
    return response.json()
  }
  const time = async (f) => {
    const t0 = performance.now()
    await f()
    return performance.now() - t0
  }
  const results = { exchange: { ours: [], fetch: [] }, refresh: { ours: [], fetch: [] } }
  // warm-up both clients
  await runtime.runPromise(oauth.exchangeCode({ code: await newCode(), scopes: ["read"] }))
  await fetchToken({ code: await newCode(), grant_type: "authorization_code" })
  for (let i = 0; i < iterations; i++) {
    const a = await newCode()
    const b = await newCode()
    results.exchange.ours.push(await time(() => runtime.runPromise(oauth.exchangeCode({ code: a, scopes: ["read"] }))))
    results.exchange.fetch.push(await time(() => fetchToken({ code: b, grant_type: "authorization_code" })))
  }
  // With more than an hour left Strava answers a refresh with the same tokens, so both sides can repeat it.
  const tokens = await runtime.runPromise(oauth.exchangeCode({ code: await newCode(), scopes: ["read"] }))
  const refreshToken = Redacted.value(tokens.refreshToken)
  for (let i = 0; i < iterations; i++) {
    results.refresh.ours.push(await time(() => runtime.runPromise(oauth.refresh(tokens))))
    results.refresh.fetch.push(
      await time(() => fetchToken({ refresh_token: refreshToken, grant_type: "refresh_token" }))
    )
  }
  await runtime.dispose()
  await Effect.runPromise(Scope.close(scope, Exit.void))
  return {
    exchange: { ours: median(results.exchange.ours), fetch: median(results.exchange.fetch) },
    refresh: { ours: median(results.refresh.ours), fetch: median(results.refresh.fetch) }
  }
}
