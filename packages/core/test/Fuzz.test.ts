import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FastCheck from "effect/FastCheck"
import * as Redacted from "effect/Redacted"

import * as Callback from "../src/Callback.js"
import * as StravaOAuth from "../src/StravaOAuth.js"
import * as Token from "../src/Token.js"
import { configFor } from "./fixtures.js"

// Whatever Strava (or something in between) answers, the service fails with a typed StravaError whose
// message is clear and secret-free, or succeeds with a well-formed value; it never throws or dies.

const envelopes = FastCheck.record({
  message: FastCheck.oneof(
    FastCheck.string(),
    FastCheck.constantFrom("Bad Request", "Authorization Error", "Forbidden")
  ),
  errors: FastCheck.array(FastCheck.record({
    resource: FastCheck.constantFrom(
      "Application",
      "RefreshToken",
      "RequestToken",
      "AuthorizationCode",
      "Athlete",
      "AccessToken",
      "x"
    ),
    field: FastCheck.constantFrom(
      "",
      "client_id",
      "refresh_token",
      "code",
      "access_token",
      "Status",
      "activity:read_permission"
    ),
    code: FastCheck.constantFrom("invalid", "expired", "missing", "Inactive", "exceeded")
  }, { requiredKeys: [] }))
}, { requiredKeys: [] })

const tokenish = FastCheck.record({
  token_type: FastCheck.oneof(FastCheck.constant("Bearer"), FastCheck.string()),
  access_token: FastCheck.oneof(FastCheck.hexaString({ minLength: 1 }), FastCheck.integer(), FastCheck.constant("")),
  refresh_token: FastCheck.oneof(FastCheck.hexaString({ minLength: 1 }), FastCheck.constant(null)),
  expires_at: FastCheck.oneof(FastCheck.integer({ min: 0 }), FastCheck.double(), FastCheck.string()),
  expires_in: FastCheck.integer(),
  athlete: FastCheck.oneof(FastCheck.record({ id: FastCheck.integer() }), FastCheck.constant(null), FastCheck.object())
}, { requiredKeys: [] })

const bodies = FastCheck.oneof(
  envelopes.map((e) => JSON.stringify(e)),
  tokenish.map((t) => JSON.stringify(t)),
  tokenish.chain((t) => FastCheck.nat(60).map((n) => JSON.stringify(t).slice(0, n))), // truncated JSON
  FastCheck.constant("<!DOCTYPE html><html><body>We're sorry, but something went wrong.</body></html>"),
  FastCheck.json(),
  FastCheck.string()
)

const statuses = FastCheck.constantFrom(200, 201, 204, 400, 401, 403, 404, 418, 429, 500, 502, 503, 504)

const answering = (status: number, body: string) =>
  HttpClient.make((request) =>
    Effect.succeed(
      HttpClientResponse.fromWeb(
        request,
        new Response(status === 204 ? null : body, { status, headers: { "content-type": "application/json" } })
      )
    )
  )

const tokens = new Token.TokenSet({
  tokenType: "Bearer",
  accessToken: Redacted.make("ACCESS-SECRET-0001"),
  refreshToken: Redacted.make("REFRESH-SECRET-0002"),
  expiresAt: 100,
  scopes: ["read"]
})

describe("fuzz: Strava's answers", () => {
  it("exchange, refresh and getAthlete turn any answer into a value or a typed, secret-free StravaError", async () => {
    await FastCheck.assert(
      FastCheck.asyncProperty(
        statuses,
        bodies,
        FastCheck.constantFrom("exchange", "refresh", "athlete"),
        async (status, body, call) => {
          const program = Effect.gen(function*() {
            const oauth = yield* StravaOAuth.StravaOAuth
            if (call === "exchange") return yield* oauth.exchangeCode({ code: "CODE-SECRET-0003", scopes: ["read"] })
            if (call === "refresh") return yield* oauth.refresh(tokens)
            return yield* oauth.getAthlete(tokens.accessToken)
          }).pipe(
            Effect.provide(StravaOAuth.layer),
            Effect.provide(configFor({ clientSecret: "CLIENT-SECRET-0004" })),
            Effect.provideService(HttpClient.HttpClient, answering(status, body))
          )
          const exit = await Effect.runPromiseExit(program)
          if (Exit.isFailure(exit)) {
            const failure = Cause.failureOption(exit.cause)
            assert.strictEqual(failure._tag, "Some", `a defect instead of a typed error: ${Cause.pretty(exit.cause)}`)
            const error = failure._tag === "Some" ? failure.value : undefined
            assert.isString(error?._tag)
            assert.isBoolean(error?.transient)
            for (const secret of ["ACCESS-SECRET", "REFRESH-SECRET", "CODE-SECRET", "CLIENT-SECRET"]) {
              assert.notInclude(error?.message ?? "", secret)
            }
          }
        }
      ),
      { numRuns: 400 }
    )
  })
})

describe("fuzz: callback URLs", () => {
  it("any redirect URL is parsed into a callback or a typed error, never a throw", () => {
    const params = FastCheck.dictionary(
      FastCheck.constantFrom("state", "code", "scope", "error", "x", "state "),
      FastCheck.oneof(FastCheck.string(), FastCheck.constantFrom("S", "read,activity:read", "access_denied", "", "%zz"))
    )
    FastCheck.assert(
      FastCheck.property(FastCheck.webUrl(), params, FastCheck.boolean(), (base, query, fragment) => {
        const search = Object.entries(query).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
          .join("&")
        const url = `${base.split(/[?#]/)[0]}?${search}${fragment ? "#_=_" : ""}`
        const exit = Effect.runSyncExit(Callback.parse(url, { state: "S", requiredScopes: ["read"] }))
        if (Exit.isFailure(exit)) assert.strictEqual(exit.cause._tag, "Fail")
        else {
          assert.strictEqual(exit.value.state, "S")
          assert.isTrue(exit.value.scopes.includes("read"))
        }
      }),
      { numRuns: 500 }
    )
  })
})
