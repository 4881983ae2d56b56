import { assert, describe, it } from "@effect/vitest"
import { MockStrava } from "@strava-auth/testing"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"

import * as GrantStore from "../src/GrantStore.js"
import * as StravaOAuth from "../src/StravaOAuth.js"
import * as TokenSource from "../src/TokenSource.js"
import { app, layer, login } from "./fixtures.js"

// Every log line and every error produced while exercising the failure paths, scanned for secrets.
describe("secrets", () => {
  it.effect("no access token, refresh token or client secret appears in any log line or error", () => {
    const lines: Array<string> = []
    // The two formats the daemon offers (--log-format logfmt|json), fed every log call.
    const capture = Logger.make((options) => {
      lines.push(Logger.logfmtLogger.log(options), Logger.jsonLogger.log(options))
    })
    return Effect.gen(function*() {
      const oauth = yield* StravaOAuth.StravaOAuth
      const mock = yield* MockStrava.MockStrava
      const errors: Array<unknown> = []
      const tokens = yield* login()
      const source = yield* TokenSource.makeRefreshing().pipe(Effect.provide(GrantStore.layerMemory(tokens)))
      const run = <A, E>(effect: Effect.Effect<A, E>) =>
        Effect.exit(effect).pipe(Effect.tap((exit) => {
          if (exit._tag === "Failure") errors.push(Cause.squash(exit.cause))
        }))
      yield* Effect.logInfo("tokens", tokens, { tokens })
      yield* TestClock.adjust("330 minutes")
      yield* mock.inject({ endpoint: "token", fault: { _tag: "ServerError", status: 500 }, when: { times: 1 } })
      yield* run(source.get)
      yield* TestClock.adjust("2 seconds")
      yield* run(source.get)
      yield* mock.inject({ endpoint: "token", fault: { _tag: "MalformedJson", processed: true }, when: { times: 1 } })
      yield* run(oauth.refresh(tokens))
      yield* run(oauth.refresh(tokens))
      yield* run(oauth.getAthlete(Redacted.make("garbage-token")))
      yield* run(oauth.exchangeCode({ code: "bad-code", scopes: [] }))
      yield* mock.revokeAthlete()
      yield* run(oauth.getAthlete(tokens.accessToken))
      yield* TestClock.adjust("7 hours")
      yield* run(source.get)

      const secrets = [app.clientSecret]
      for (const entry of yield* mock.log) if (entry.refreshToken !== undefined) secrets.push(entry.refreshToken)
      secrets.push(Redacted.value(tokens.accessToken), Redacted.value(tokens.refreshToken))
      const texts = [
        ...lines,
        ...errors.flatMap((e) => [String(e), e instanceof Error ? e.message : "", JSON.stringify(e)]),
        ...errors.map((e) => Cause.pretty(Cause.fail(e)))
      ]
      assert.isAbove(errors.length, 5)
      assert.isAbove(lines.length, 2)
      for (const text of texts) {
        for (const secret of secrets) assert.notInclude(text, secret)
      }
    }).pipe(
      Effect.provide(Logger.replace(Logger.defaultLogger, capture)),
      Logger.withMinimumLogLevel(LogLevel.All),
      Effect.provide(layer())
    )
  })
})
