import { assert, describe, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

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

  it("the push-subscription endpoints take the app's id and secret: Application/invalid there → InvalidClient", () => {
    const error = classify("subscriptions", 401, row("Application", "", "invalid", "Authorization Error"))
    assert.strictEqual(error._tag, "InvalidClient")
    assert.include(error.message, "STRAVA_CLIENT_SECRET")
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

// Bodies beyond the table: how the envelope's items are matched and in which order.
describe("StravaError.fromResponse, matching the envelope", () => {
  const body = (...items: ReadonlyArray<readonly [string, string, string]>) =>
    JSON.stringify({
      message: "Bad Request",
      errors: items.map(([resource, field, code]) => ({ resource, field, code }))
    })

  it("an inactive app wins over every other item, in any case, and needs Application, Status and Inactive all three", () => {
    const cases: ReadonlyArray<readonly [StravaError.Endpoint, number, string, string]> = [
      [
        "token",
        400,
        body(["RefreshToken", "refresh_token", "invalid"], ["Application", "Status", "Inactive"]),
        "AppInactive"
      ],
      ["api", 403, body(["application", "status", "INACTIVE"]), "AppInactive"],
      ["token", 403, body(["Application", "", "Inactive"]), "InvalidClient"],
      ["token", 403, body(["Application", "Status", "invalid"]), "InvalidClient"],
      ["api", 403, body(["Athlete", "Status", "Inactive"]), "Unauthorized"]
    ]
    for (const [endpoint, status, text, tag] of cases) {
      assert.strictEqual(classify(endpoint, status, text)._tag, tag, text)
    }
  })

  it("a refresh token item is InvalidGrant(refresh_token) before a code item; either code spelling, any case, is InvalidGrant(authorization_code); the item's triple is kept", () => {
    const cases: ReadonlyArray<readonly [string, string, [string, string, string]]> = [
      [body(["AuthorizationCode", "", "expired"], ["RefreshToken", "refresh_token", "invalid"]), "refresh_token", [
        "RefreshToken",
        "refresh_token",
        "invalid"
      ]],
      [body(["requesttoken", "code", "invalid"]), "authorization_code", ["requesttoken", "code", "invalid"]],
      [body(["AUTHORIZATIONCODE", "", "expired"]), "authorization_code", ["AUTHORIZATIONCODE", "", "expired"]]
    ]
    for (const [text, grant, [resource, field, code]] of cases) {
      const error = classify("token", 400, text)
      assert.strictEqual(error._tag, "InvalidGrant", text)
      if (error._tag !== "InvalidGrant") continue
      assert.deepStrictEqual([error.grant, error.status, error.resource, error.field, error.code], [
        grant,
        400,
        resource,
        field,
        code
      ])
    }
  })

  it("MissingScope needs AccessToken with code missing, and strips only a trailing _permission", () => {
    const scope = (field: string) => {
      const error = classify("api", 401, body(["AccessToken", field, "missing"]))
      return error._tag === "MissingScope" ? error.scope : error._tag
    }
    assert.strictEqual(scope("activity:read_permission"), "activity:read")
    assert.strictEqual(scope("activity:write_permissions"), "activity:write_permissions")
    assert.strictEqual(scope("profile:read_all"), "profile:read_all")
    // AccessToken without `missing`, or `missing` on another resource, is not a scope problem.
    assert.strictEqual(classify("api", 401, body(["AccessToken", "", "invalid"]))._tag, "Unauthorized")
    assert.strictEqual(classify("token", 400, body(["Application", "client_id", "missing"]))._tag, "InvalidClient")
  })

  it("Application is InvalidClient on token and revoke, and on any endpoint when the field is client_id; otherwise Unauthorized", () => {
    const cases: ReadonlyArray<readonly [StravaError.Endpoint, string, string]> = [
      ["token", "", "InvalidClient"],
      ["revoke", "", "InvalidClient"],
      ["api", "CLIENT_ID", "InvalidClient"],
      ["deauthorize", "client_id", "InvalidClient"],
      ["api", "", "Unauthorized"],
      ["deauthorize", "access_token", "Unauthorized"]
    ]
    for (const [endpoint, field, tag] of cases) {
      const error = classify(endpoint, 401, body(["Application", field, "invalid"]))
      assert.strictEqual(error._tag, tag, `${endpoint} ${field}`)
      if (error._tag === "InvalidClient") assert.deepStrictEqual([error.field, error.code], [field, "invalid"])
      if (error._tag === "Unauthorized") {
        assert.deepStrictEqual([error.resource, error.field, error.code], ["Application", field, "invalid"])
      }
    }
  })

  it("an Athlete item is Unauthorized at any status; a 401 without a known item is Unauthorized with empty fields", () => {
    const athlete = classify("api", 400, body(["Athlete", "access_token", "invalid"]))
    assert.strictEqual(athlete._tag, "Unauthorized")
    if (athlete._tag === "Unauthorized") {
      assert.deepStrictEqual([athlete.resource, athlete.field, athlete.code], ["Athlete", "access_token", "invalid"])
    }
    for (const text of ["", "<html>Unauthorized</html>", body(["Route", "path", "unknown"])]) {
      const error = classify("api", 401, text)
      assert.strictEqual(error._tag, "Unauthorized", text)
      if (error._tag === "Unauthorized") assert.deepStrictEqual([error.resource, error.field, error.code], ["", "", ""])
    }
  })

  it("5xx is ServerError from 500 up, and 499 is not", () => {
    for (const status of [500, 501, 599]) assert.strictEqual(classify("api", status, "")._tag, "ServerError")
    assert.strictEqual(classify("api", 499, "")._tag, "UnexpectedResponse")
  })

  it("429 retries at midnight UTC when the read daily window is spent too", () => {
    const error = classify("api", 429, "", { "X-ReadRateLimit-Limit": "100,1000", "X-ReadRateLimit-Usage": "3,1000" })
    assert.strictEqual(error._tag === "RateLimited" && error.retryAt, Date.UTC(2026, 10, 25))
  })

  it("an unknown status describes the envelope as its message and each resource/field/code, space-separated, or says there was none", () => {
    const detail = (text: string) => {
      const error = classify("api", 404, text)
      return error._tag === "UnexpectedResponse" ? [error.reason, error.detail] : [error._tag]
    }
    assert.deepStrictEqual(detail(row("resource", "path", "invalid", "Record Not Found")), [
      "Status",
      "Record Not Found resource/path/invalid"
    ])
    assert.deepStrictEqual(detail(JSON.stringify({ errors: [{ resource: "a", code: "b" }, { field: "c" }] })), [
      "Status",
      "a//b /c/"
    ])
    assert.deepStrictEqual(detail(JSON.stringify({ message: "Not Found" })), ["Status", "Not Found"])
    assert.deepStrictEqual(detail("<!DOCTYPE html><p>Not Found</p>"), ["Status", "no error envelope"])
  })
})

describe("StravaError.parseFault", () => {
  it("fills a missing message, errors, resource, field or code with empty values; None for what is not an envelope", () => {
    assert.deepStrictEqual(StravaError.parseFault("{}"), Option.some({ message: "", errors: [] }))
    assert.deepStrictEqual(
      StravaError.parseFault(
        JSON.stringify({ message: "m", errors: [{ resource: "Application" }, { field: "f" }, { code: "c" }] })
      ),
      Option.some({
        message: "m",
        errors: [
          { resource: "Application", field: "", code: "" },
          { resource: "", field: "f", code: "" },
          { resource: "", field: "", code: "c" }
        ]
      })
    )
    for (const text of ["", "<html></html>", "{\"message\":", "[]", "{\"errors\":[1]}"]) {
      assert.isTrue(Option.isNone(StravaError.parseFault(text)), text)
    }
  })
})

const at = Date.UTC(2026, 10, 24, 10, 15)

// Every error's whole message (what happened, then what to do) and whether it is transient.
const messages: ReadonlyArray<readonly [StravaError.StravaError, string, boolean]> = [
  [
    new StravaError.InvalidGrant({
      grant: "refresh_token",
      status: 400,
      resource: "RefreshToken",
      field: "refresh_token",
      code: "invalid"
    }),
    "Strava rejected the refresh token (400 RefreshToken/invalid): the grant was revoked, superseded or has " +
    "expired. Log in again (strava-auth login).",
    false
  ],
  [
    new StravaError.InvalidGrant({
      grant: "authorization_code",
      status: 400,
      resource: "RequestToken",
      field: "code",
      code: "invalid"
    }),
    "Strava rejected the authorization code (400 RequestToken/invalid): codes are single-use and short-lived. " +
    "Start the login again and exchange the new code at once.",
    false
  ],
  [
    new StravaError.InvalidClient({ status: 400, field: "client_id", code: "invalid" }),
    "Strava rejected the application's client id (400 Application/client_id/invalid). Check STRAVA_CLIENT_ID and " +
    "STRAVA_CLIENT_SECRET against https://www.strava.com/settings/api.",
    false
  ],
  [
    new StravaError.InvalidClient({ status: 401, field: "", code: "invalid" }),
    "Strava rejected the application's client id or client secret (401 Application/-/invalid). Check " +
    "STRAVA_CLIENT_ID and STRAVA_CLIENT_SECRET against https://www.strava.com/settings/api.",
    false
  ],
  [
    new StravaError.AppInactive({ status: 403 }),
    "Strava reports the application as inactive (403 Application/Status/Inactive). The app's owner must " +
    "reactivate it (subscription) at https://www.strava.com/settings/api; tokens are kept meanwhile.",
    false
  ],
  [
    new StravaError.MissingScope({ status: 401, scope: "activity:read" }),
    "The token lacks the activity:read scope this request needs. Log in again asking for activity:read and " +
    "leave it ticked on Strava's authorize page.",
    false
  ],
  [
    new StravaError.Unauthorized({ status: 401, resource: "Athlete", field: "access_token", code: "invalid" }),
    "Strava did not accept the access token (401 Athlete/access_token/invalid). Refresh it; if that fails too, " +
    "log in again.",
    false
  ],
  [
    new StravaError.Unauthorized({ status: 401, resource: "", field: "", code: "" }),
    "Strava did not accept the access token (401 -/-/-). Refresh it; if that fails too, log in again.",
    false
  ],
  [
    new StravaError.RateLimited({
      status: 429,
      limit: Option.some({ fifteenMinutes: 200, daily: 2000 }),
      usage: Option.some({ fifteenMinutes: 201, daily: 540 }),
      readLimit: Option.none(),
      readUsage: Option.none(),
      retryAt: at
    }),
    "Strava's rate limit is exceeded (usage 201,540 of 200,2000, read ? of ?). Retry after 2026-11-24T10:15:00.000Z.",
    true
  ],
  [
    new StravaError.ServerError({ status: 503 }),
    "Strava answered 503: a server-side problem. Retry later; the current token stays usable until it expires.",
    true
  ],
  [
    new StravaError.TransportError({ reason: "Timeout", detail: "no answer in 10 seconds" }),
    "Strava did not answer in time (no answer in 10 seconds). Retry later; check the network if it persists.",
    true
  ],
  [
    new StravaError.TransportError({ reason: "Transport", detail: "ECONNREFUSED" }),
    "Could not reach Strava (ECONNREFUSED). Check the network, proxy and STRAVA_BASE_URL/STRAVA_API_URL.",
    true
  ],
  [
    new StravaError.UnexpectedResponse({ status: 200, reason: "Decode", detail: "invalid or missing: expires_at" }),
    "Strava's 200 response could not be decoded (invalid or missing: expires_at). Retry later.",
    true
  ],
  [
    StravaError.tooLarge(200),
    "Strava's 200 response is too large (more than 65536 bytes); Strava's answers are a few KB, so this is not " +
    "Strava's API: check STRAVA_BASE_URL/STRAVA_API_URL and any proxy. Retry later.",
    true
  ],
  [
    new StravaError.UnexpectedResponse({ status: 404, reason: "Status", detail: "Record Not Found" }),
    "Strava answered an unexpected 404 (Record Not Found). Check the request; report it if it persists.",
    false
  ]
]

const AnyError = Schema.Union(
  StravaError.InvalidGrant,
  StravaError.InvalidClient,
  StravaError.AppInactive,
  StravaError.MissingScope,
  StravaError.Unauthorized,
  StravaError.RateLimited,
  StravaError.ServerError,
  StravaError.TransportError,
  StravaError.UnexpectedResponse
)

describe("StravaError's errors", () => {
  it("each message says what happened and what to do, exactly; transient and isTransient agree with the table", () => {
    for (const [error, message, transient] of messages) {
      assert.strictEqual(error.message, message)
      assert.strictEqual(error.transient, transient, error._tag)
      assert.strictEqual(StravaError.isTransient(error), transient, error._tag)
    }
  })

  it("isTransient is true only for transient === true", () => {
    assert.isFalse(StravaError.isTransient({}))
    assert.isFalse(StravaError.isTransient({ transient: undefined }))
    assert.isFalse(StravaError.isTransient({ transient: false }))
    assert.isTrue(StravaError.isTransient({ transient: true }))
  })

  it("each error survives an encode/decode round trip through its schema with every field", () => {
    for (const [error] of messages) {
      const encoded = Schema.encodeSync(AnyError)(error)
      const decoded = Schema.decodeUnknownSync(AnyError)(encoded)
      assert.strictEqual(Object.getPrototypeOf(decoded), Object.getPrototypeOf(error), error._tag)
      assert.deepStrictEqual(Schema.encodeSync(AnyError)(decoded), encoded, error._tag)
      assert.strictEqual(decoded.message, error.message)
    }
    assert.deepStrictEqual(Schema.encodeSync(StravaError.AppInactive)(new StravaError.AppInactive({ status: 403 })), {
      _tag: "AppInactive",
      status: 403
    })
  })

  it("a RateLimited window must have both numbers", () => {
    const decode = Schema.decodeUnknownSync(StravaError.RateLimited)
    const withLimit = (limit: unknown) => ({
      _tag: "RateLimited",
      status: 429,
      limit,
      usage: Option.none(),
      readLimit: Option.none(),
      readUsage: Option.none(),
      retryAt: at
    })
    assert.deepStrictEqual(
      Option.getOrThrow(decode(withLimit(Option.some({ fifteenMinutes: 200, daily: 2000 }))).limit),
      { fifteenMinutes: 200, daily: 2000 }
    )
    for (const bad of [{ daily: 2000 }, { fifteenMinutes: 200 }, { fifteenMinutes: "200", daily: 2000 }]) {
      assert.throws(() => decode(withLimit(Option.some(bad))), undefined, undefined, JSON.stringify(bad))
    }
  })

  it("tooLarge names the limit it went over, 64 KB unless told", () => {
    assert.strictEqual(StravaError.maxBodyBytes, 65536)
    assert.strictEqual(StravaError.tooLarge(200).detail, "more than 65536 bytes")
    assert.strictEqual(StravaError.tooLarge(502, 1024).detail, "more than 1024 bytes")
    assert.strictEqual(StravaError.tooLarge(502, 1024).status, 502)
  })
})

describe("StravaError.scrub and secretForms", () => {
  it("an empty secret has no forms and removes nothing", () => {
    assert.deepStrictEqual(StravaError.secretForms(""), [])
    assert.deepStrictEqual(StravaError.secretForms(Redacted.make("")), [])
    assert.strictEqual(StravaError.scrub("nothing secret here", ["", Redacted.make("")]), "nothing secret here")
  })

  it("a secret that contains another is replaced whole, whichever order they are given in", () => {
    for (const secrets of [["abc", "abcdef"], ["abcdef", "abc"]]) {
      assert.strictEqual(StravaError.scrub("token abcdef, code abc", secrets), "token [redacted], code [redacted]")
    }
  })

  it("text of up to 200 characters is kept whole; longer is cut to 199 and an ellipsis", () => {
    const exact = "x".repeat(StravaError.maxServerText)
    assert.strictEqual(StravaError.scrub(exact), exact)
    assert.strictEqual(StravaError.scrub(`${exact}y`), `${"x".repeat(199)}…`)
  })
})

describe("StravaError.fieldPaths and fromParseError", () => {
  const Shape = Schema.Struct({ athlete: Schema.Struct({ id: Schema.Number }), expires_at: Schema.Number })
  const failure = (input: unknown) => {
    const result = Schema.decodeUnknownEither(Shape)(input, { errors: "all" })
    if (Either.isRight(result)) throw new Error("expected a decoding failure")
    return result.left
  }

  it("names each failing path once, dotted, in order; the whole value as (body) or the root given; never the values", () => {
    const error = failure({ athlete: { id: "tok-secret" } })
    assert.deepStrictEqual(StravaError.fieldPaths(error), ["athlete.id", "expires_at"])
    assert.deepStrictEqual(StravaError.fieldPaths(failure("tok-secret")), ["(body)"])
    assert.deepStrictEqual(StravaError.fieldPaths(failure(null), "token file"), ["token file"])
    const decode = StravaError.fromParseError(200, error)
    assert.deepStrictEqual([decode.status, decode.reason, decode.detail], [
      200,
      "Decode",
      "invalid or missing: athlete.id, expires_at"
    ])
    assert.notInclude(decode.message, "tok-secret")
  })
})
