import { assert, describe, it } from "@effect/vitest"
import * as FastCheck from "effect/FastCheck"
import * as Option from "effect/Option"

import * as StravaError from "../src/StravaError.js"

const row = (resource: string, field: string, code: string, message = "Bad Request") =>
  JSON.stringify({ message, errors: [{ resource, field, code }] })

const classify = (
  endpoint: StravaError.Endpoint,
  status: number,
  body: string,
  headers: Record<string, string> = {},
  nowMillis = Date.UTC(2026, 10, 24, 10, 7)
) => StravaError.fromResponse({ endpoint, status, headers, body, nowMillis })

// One test per row of the error table in docs/STRAVA.md, with Strava's own bodies.
describe("StravaError.fromResponse", () => {
  it("bad or non-numeric client_id → InvalidClient naming the client id", () => {
    const error = classify("token", 400, row("Application", "client_id", "invalid"))
    assert.strictEqual(error._tag, "InvalidClient")
    assert.include(error.message, "client id")
    assert.include(error.message, "STRAVA_CLIENT_ID")
    assert.isFalse(error.transient)
  })

  it("bad, used or expired code → InvalidGrant for the authorization code (both spellings)", () => {
    const used = classify("token", 400, row("RequestToken", "code", "invalid"))
    const expired = classify("token", 400, row("AuthorizationCode", "", "expired"))
    for (const error of [used, expired]) {
      assert.strictEqual(error._tag, "InvalidGrant")
      assert.strictEqual(error._tag === "InvalidGrant" && error.grant, "authorization_code")
      assert.isFalse(error.transient)
    }
  })

  it("dead refresh token → InvalidGrant that says to log in again", () => {
    const error = classify("token", 400, row("RefreshToken", "refresh_token", "invalid"))
    assert.strictEqual(error._tag, "InvalidGrant")
    assert.strictEqual(error._tag === "InvalidGrant" && error.grant, "refresh_token")
    assert.include(error.message, "Log in again")
  })

  it("wrong client_secret (401, also seen as 400) → InvalidClient on the token endpoint", () => {
    for (const status of [401, 400]) {
      const error = classify("token", status, row("Application", "", "invalid", "Authorization Error"))
      assert.strictEqual(error._tag, "InvalidClient")
      assert.include(error.message, "STRAVA_CLIENT_SECRET")
    }
    assert.strictEqual(classify("token", 401, row("Application", "client_secret", "invalid"))._tag, "InvalidClient")
    assert.strictEqual(classify("revoke", 401, row("Application", "", "invalid"))._tag, "InvalidClient")
  })

  it("API call with an expired or invalid token → Unauthorized", () => {
    const error = classify("api", 401, row("Athlete", "access_token", "invalid", "Authorization Error"))
    assert.strictEqual(error._tag, "Unauthorized")
    assert.include(error.message, "Refresh")
  })

  it("API call with a garbage token (Application/invalid) → Unauthorized, not InvalidClient", () => {
    const error = classify("api", 401, row("Application", "", "invalid", "Authorization Error"))
    assert.strictEqual(error._tag, "Unauthorized")
    assert.strictEqual(classify("deauthorize", 401, row("Application", "", "invalid"))._tag, "Unauthorized")
  })

  it("missing scope (401, not 403) → MissingScope naming the scope", () => {
    const error = classify("api", 401, row("AccessToken", "activity:read_permission", "missing"))
    assert.strictEqual(error._tag, "MissingScope")
    assert.strictEqual(error._tag === "MissingScope" && error.scope, "activity:read")
    assert.include(error.message, "activity:read")
  })

  it("inactive app (403) → AppInactive, permanent", () => {
    const error = classify("token", 403, row("Application", "Status", "Inactive", "Forbidden"))
    assert.strictEqual(error._tag, "AppInactive")
    assert.isFalse(error.transient)
    assert.include(error.message, "reactivate")
  })

  it("429 → RateLimited with limits and usage read case-insensitively, retry at the next quarter hour", () => {
    const error = classify("api", 429, row("Application", "rate limit", "exceeded", "Rate Limit Exceeded"), {
      "x-ratelimit-limit": "200,2000",
      "X-Ratelimit-Usage": "201,540",
      "X-READRATELIMIT-LIMIT": "100,1000",
      "x-readratelimit-usage": "101,300"
    })
    assert.strictEqual(error._tag, "RateLimited")
    if (error._tag !== "RateLimited") return
    assert.deepStrictEqual(Option.getOrThrow(error.usage), { fifteenMinutes: 201, daily: 540 })
    assert.deepStrictEqual(Option.getOrThrow(error.limit), { fifteenMinutes: 200, daily: 2000 })
    assert.deepStrictEqual(Option.getOrThrow(error.readUsage), { fifteenMinutes: 101, daily: 300 })
    assert.strictEqual(error.retryAt, Date.UTC(2026, 10, 24, 10, 15))
    assert.isTrue(error.transient)
  })

  it("429 with the daily limit spent → retry at midnight UTC", () => {
    const error = classify("api", 429, "", { "X-RateLimit-Limit": "200,2000", "X-RateLimit-Usage": "12,2000" })
    assert.strictEqual(error._tag === "RateLimited" && error.retryAt, Date.UTC(2026, 10, 25))
  })

  it("5xx with an HTML page → ServerError, transient", () => {
    for (const status of [500, 502, 503, 504]) {
      const error = classify("token", status, "<!DOCTYPE html><html><body>We're sorry</body></html>")
      assert.strictEqual(error._tag, "ServerError")
      assert.isTrue(error.transient)
    }
  })

  it("an unknown 4xx is a permanent UnexpectedResponse describing the envelope", () => {
    const error = classify("api", 404, row("resource", "path", "invalid", "Record Not Found"))
    assert.strictEqual(error._tag, "UnexpectedResponse")
    assert.include(error.message, "Record Not Found")
    assert.isFalse(error.transient)
  })

  it("classifies any body without throwing, and never echoes the body into the message", () => {
    FastCheck.assert(FastCheck.property(
      FastCheck.integer({ min: 400, max: 599 }),
      FastCheck.oneof(FastCheck.string(), FastCheck.json()),
      FastCheck.constantFrom<StravaError.Endpoint>("token", "api", "deauthorize", "revoke"),
      (status, body, endpoint) => {
        const secretish = `SECRET${body}`
        const error = classify(endpoint, status, secretish)
        assert.notInclude(error.message, "SECRET")
        assert.isString(error._tag)
      }
    ))
  })
})
