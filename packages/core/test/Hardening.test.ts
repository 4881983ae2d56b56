// A broken or hostile server: secrets echoed in error envelopes, bodies without end, credentials in a base URL.
// Real HTTP servers on 127.0.0.1 (undici, as the daemon uses), because the point is the bytes on the wire.
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as Zlib from "node:zlib"

import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"

import * as Callback from "../src/Callback.js"
import * as StravaClient from "../src/StravaClient.js"
import * as StravaConfig from "../src/StravaConfig.js"
import * as StravaError from "../src/StravaError.js"
import * as StravaOAuth from "../src/StravaOAuth.js"
import * as Token from "../src/Token.js"
import * as TokenSource from "../src/TokenSource.js"

// Secrets with characters that form-encoding changes, so the encoded echo is tested too.
const clientSecret = "hostile-secret/0123+4567=89abcdef"
const refreshToken = "refresh/token+ABCDEFGH=0123456789"
const accessToken = "access-token-0123456789abcdef"
const code = "code-0123456789abcdef/+="

type Handler = (request: Http.IncomingMessage, body: string, response: Http.ServerResponse) => void

/** A server on 127.0.0.1 that reads each request's body and hands it to `handler`; closed with the scope. */
const server = (handler: Handler) =>
  Effect.acquireRelease(
    Effect.async<Http.Server & { url: string }>((resume) => {
      const http = Http.createServer((request, response) => {
        let body = ""
        request.setEncoding("utf8")
        request.on("data", (d: string) => (body += d))
        request.on("end", () => handler(request, body, response))
      })
      http.listen(0, "127.0.0.1", () => {
        const { port } = http.address() as AddressInfo
        resume(Effect.succeed(Object.assign(http, { url: `http://127.0.0.1:${port}` })))
      })
    }),
    (http) =>
      Effect.async<void>((resume) => {
        http.closeAllConnections()
        http.close(() => resume(Effect.void))
      })
  )

/** The service against `baseUrl`, built into the test's scope (the undici dispatcher lives as long). */
const oauthAt = (baseUrl: string, config: Partial<StravaConfig.Input> = {}) =>
  Layer.build(
    StravaOAuth.layer.pipe(
      Layer.provide(
        StravaConfig.layer({
          clientId: "4242",
          clientSecret,
          baseUrl,
          apiUrl: `${baseUrl}/api/v3`,
          retries: 0,
          ...config
        })
      ),
      Layer.provide(NodeHttpClient.layerUndici)
    )
  ).pipe(Effect.map(Context.get(StravaOAuth.StravaOAuth)))

const tokens = new Token.TokenSet({
  tokenType: "Bearer",
  accessToken: Redacted.make(accessToken),
  refreshToken: Redacted.make(refreshToken),
  expiresAt: 0,
  scopes: ["read"]
})

/** Everything an error can show: its message, its string form, its fields as JSON. */
const shown = (error: unknown) => [String(error), (error as Error).message, JSON.stringify(error)].join("\n")

const assertNoSecrets = (text: string) => {
  for (const secret of [clientSecret, refreshToken, accessToken, code]) {
    for (const form of StravaError.secretForms(secret)) assert.notInclude(text, form)
  }
  // The Basic credential of /oauth/revoke.
  assert.notInclude(text, Buffer.from(`4242:${clientSecret}`).toString("base64"))
}

describe("a server that echoes secrets in its error envelope", () => {
  // Echoes the form body as received (form-encoded), its values decoded, and the Authorization header.
  const echo: Handler = (request, body, response) => {
    const params = new URLSearchParams(body)
    const values = [...params.values()].join(" ")
    const authorization = request.headers.authorization ?? ""
    const [resource, field] = request.url === "/oauth/token" && params.has("refresh_token")
      ? ["RefreshToken", params.get("refresh_token")!]
      : ["Echo", values]
    response.writeHead(400, { "content-type": "application/json" })
    response.end(JSON.stringify({
      message: `Bad Request: ${body} ${values} ${authorization} ${"padding ".repeat(2_000)}`,
      errors: [{ resource, field, code: `${params.get("client_secret") ?? authorization}` }, {
        resource: "Echo",
        field: values,
        code: authorization
      }]
    }))
  }

  it.scoped("refresh: the refresh token and the client secret become [redacted], the text is capped", () =>
    Effect.gen(function*() {
      const http = yield* server(echo)
      const oauth = yield* oauthAt(http.url)
      const error = yield* Effect.flip(oauth.refresh(tokens))
      // Still classified by the envelope: the grant is reported dead, as Strava's RefreshToken item says.
      assert.strictEqual(error._tag, "InvalidGrant")
      const text = shown(error)
      assertNoSecrets(text)
      assert.include(text, "[redacted]")
      if (error._tag === "InvalidGrant") {
        assert.isAtMost(error.field.length, StravaError.maxServerText)
        assert.isAtMost(error.code.length, StravaError.maxServerText)
      }
    }))

  it.scoped("exchange, revoke, deauthorize and getAthlete: the code, tokens and Basic credential are scrubbed", () =>
    Effect.gen(function*() {
      const http = yield* server(echo)
      const oauth = yield* oauthAt(http.url)
      const errors = [
        yield* Effect.flip(oauth.exchangeCode({ code, scopes: ["read"] })),
        yield* Effect.flip(oauth.revoke(Redacted.make(refreshToken), "refresh_token")),
        yield* Effect.flip(oauth.deauthorize(Redacted.make(accessToken))),
        yield* Effect.flip(oauth.getAthlete(Redacted.make(accessToken)))
      ]
      for (const error of errors) {
        const text = shown(error)
        assertNoSecrets(text)
        if (error._tag === "UnexpectedResponse") {
          assert.include(error.detail, "[redacted]")
          assert.isAtMost(error.detail.length, StravaError.maxServerText)
        }
      }
      assert.deepStrictEqual(errors.map((e) => e._tag), [
        "UnexpectedResponse",
        "UnexpectedResponse",
        "UnexpectedResponse",
        "UnexpectedResponse"
      ])
    }))
})

const ceiling = 32 * 1024 * 1024

/** Writes 64 KB chunks (no Content-Length) until the client goes away or `ceiling` bytes are out. */
const endless = (status: number, written: { bytes: number; closed: Promise<void> }) => {
  let closed!: () => void
  written.closed = new Promise((resolve) => (closed = resolve))
  const chunk = Buffer.alloc(64 * 1024, "x")
  const handler: Handler = (_request, _body, response) => {
    response.writeHead(status, { "content-type": "application/json" })
    response.on("close", () => closed())
    const pump = () => {
      while (!response.destroyed && written.bytes < ceiling) {
        written.bytes += chunk.length
        if (!response.write(chunk)) return void response.once("drain", pump)
      }
      if (!response.destroyed) response.end()
    }
    pump()
  }
  return handler
}

describe("a server whose body has no end", () => {
  for (const status of [200, 400]) {
    it.scoped(`a ${status} answer is abandoned past 64 KB: a transient UnexpectedResponse(TooLarge)`, () =>
      Effect.gen(function*() {
        const written = { bytes: 0, closed: Promise.resolve() }
        const http = yield* server(endless(status, written))
        const oauth = yield* oauthAt(http.url)
        const error = yield* Effect.flip(oauth.refresh(tokens))
        assert.strictEqual(error._tag, "UnexpectedResponse")
        if (error._tag === "UnexpectedResponse") {
          assert.strictEqual(error.reason, "TooLarge")
          assert.strictEqual(error.status, status)
          assert.isTrue(error.transient)
          assert.include(error.message, "STRAVA_BASE_URL")
        }
        // The client hung up: the server could not push its 32 MB through.
        yield* Effect.promise(() => written.closed)
        assert.isBelow(written.bytes, ceiling)
      }))
  }

  it.scoped("a declared Content-Length over the limit fails before the body is read", () =>
    Effect.gen(function*() {
      const http = yield* server((_request, _body, response) => {
        response.writeHead(200, { "content-type": "application/json", "content-length": String(200 * 1024 * 1024) })
        response.write("{") // and nothing more: a client that waited for the body would time out
      })
      const oauth = yield* oauthAt(http.url, { timeout: "3 seconds" })
      const error = yield* Effect.flip(oauth.refresh(tokens))
      assert.strictEqual(error._tag === "UnexpectedResponse" ? error.reason : error._tag, "TooLarge")
    }))
})

describe("a body with a declared length", () => {
  const refreshed = JSON.stringify({
    token_type: "Bearer",
    access_token: "a-new-access-token",
    refresh_token: "a-new-refresh-token",
    expires_at: 2_000_000_000,
    expires_in: 21600
  })

  it.scoped("within the limit, it is read in one go and decoded", () =>
    Effect.gen(function*() {
      const http = yield* server((_request, _body, response) => {
        response.writeHead(200, {
          "content-type": "application/json",
          "content-length": String(Buffer.byteLength(refreshed))
        })
        response.end(refreshed)
      })
      const oauth = yield* oauthAt(http.url)
      const fresh = yield* oauth.refresh(tokens)
      assert.strictEqual(Redacted.value(fresh.accessToken), "a-new-access-token")
    }))

  it.scoped("gzip with a small declared length that unpacks past the cap (fetch unpacks it): TooLarge", () =>
    Effect.gen(function*() {
      const packed = Zlib.gzipSync(Buffer.alloc(2 * 1024 * 1024, " "))
      const http = yield* server((_request, _body, response) => {
        response.writeHead(200, {
          "content-type": "application/json",
          "content-encoding": "gzip",
          "content-length": String(packed.length)
        })
        response.end(packed)
      })
      const oauth = yield* StravaOAuth.make.pipe(
        Effect.provide(StravaConfig.layer({
          clientId: "1",
          clientSecret: "a-client-secret",
          baseUrl: http.url,
          apiUrl: `${http.url}/api/v3`,
          retries: 0
        })),
        Effect.provide(FetchHttpClient.layer)
      )
      assert.isBelow(packed.length, 64 * 1024)
      const error = yield* Effect.flip(oauth.refresh(tokens))
      assert.strictEqual(error._tag === "UnexpectedResponse" ? error.reason : error._tag, "TooLarge")
    }))

  it.scoped("cut short of its length (the connection closed early), it is an unreadable body, not a token", () =>
    Effect.gen(function*() {
      const http = yield* server((_request, _body, response) => {
        response.writeHead(200, { "content-type": "application/json", "content-length": "4096" })
        response.write(refreshed.slice(0, 20))
        response.destroy()
      })
      const oauth = yield* oauthAt(http.url)
      const error = yield* Effect.flip(oauth.refresh(tokens))
      assert.isTrue(error.transient, error._tag)
      assert.notInclude(error.message, "a-new-access-token")
    }))
})

describe("credentials in a base URL", () => {
  const withEnv = (env: Record<string, string>) =>
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

  for (const variable of ["STRAVA_BASE_URL", "STRAVA_API_URL"]) {
    it.effect(`${variable}=http://user:pass@host is a configuration error that does not show the password`, () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(
          Effect.all([StravaConfig.baseUrl, StravaConfig.apiUrl]).pipe(
            withEnv({ [variable]: "http://strava-user:hunter2-secret@127.0.0.1:9/api" })
          )
        )
        const text = String(error)
        assert.include(text, variable)
        assert.include(text, "user name or password")
        assert.notInclude(text, "hunter2-secret")
        assert.notInclude(text, "strava-user")
      }))
  }

  it("validateUrl: userinfo refused (even a user alone), Strava's URLs accepted without trailing slashes", () => {
    assert.deepStrictEqual(
      StravaConfig.validateUrl("https://www.strava.com/", "X", StravaConfig.defaultBaseUrl),
      StravaConfig.validateUrl("https://www.strava.com", "X", StravaConfig.defaultBaseUrl)
    )
    for (const bad of ["http://user@127.0.0.1", "http://:pw@127.0.0.1", "https://a:b@www.strava.com/api/v3"]) {
      const result = StravaConfig.validateUrl(bad, "STRAVA_BASE_URL", StravaConfig.defaultBaseUrl)
      assert.strictEqual(result._tag, "Left", bad)
    }
    const malformed = StravaConfig.validateUrl("ftp://u:secret-pw@x", "STRAVA_API_URL", StravaConfig.defaultApiUrl)
    assert.strictEqual(malformed._tag, "Left")
    if (malformed._tag === "Left") assert.notInclude(malformed.left, "secret-pw")
  })
})

describe("StravaError.scrub", () => {
  it("replaces each secret as sent, percent-encoded and form-encoded; controls become spaces; at most 200", () => {
    const secret = "a b/c+d=é"
    const text = `raw ${secret} uri ${encodeURIComponent(secret)} form ${new URLSearchParams({
      s: secret
    })}\n\u001b[31m`
    const scrubbed = StravaError.scrub(text, [Redacted.make(secret)])
    assert.strictEqual(scrubbed, "raw [redacted] uri [redacted] form s=[redacted]  [31m")
    const long = StravaError.scrub("x".repeat(10_000))
    assert.strictEqual(long.length, StravaError.maxServerText)
  })
})

describe("a redirect with a hostile error", () => {
  it.effect("the error text is capped and loses its control characters", () =>
    Effect.gen(function*() {
      const error = `access_denied\n\u001b[2J${"x".repeat(5_000)}`
      const url = `http://127.0.0.1:8123/cb?state=s&error=${encodeURIComponent(error)}`
      const denied = yield* Effect.flip(Callback.parse(url, { state: "s" }))
      assert.strictEqual(denied._tag, "AuthorizationDenied")
      if (denied._tag === "AuthorizationDenied") {
        assert.strictEqual(denied.error.length, StravaError.maxServerText)
        assert.isTrue(denied.error.startsWith("access_denied  [2J"))
      }
    }))
})

describe("StravaClient's 401", () => {
  it.scoped("an endless 401 body is abandoned past 64 KB: a ResponseError, not a process full of bytes", () =>
    Effect.gen(function*() {
      const written = { bytes: 0, closed: Promise.resolve() }
      const http = yield* server(endless(401, written))
      const token = Redacted.make(accessToken)
      const client = yield* StravaClient.makeWith({ apiUrl: `${http.url}/api/v3` }).pipe(
        Effect.provideService(
          TokenSource.TokenSource,
          TokenSource.TokenSource.of({ get: Effect.succeed(token), invalidate: () => Effect.succeed(token) })
        ),
        Effect.provide(yield* Layer.build(NodeHttpClient.layerUndici))
      )
      const error = yield* Effect.flip(client.get("/athlete"))
      assert.strictEqual(error._tag, "ResponseError")
      if (error._tag === "ResponseError") assert.include(error.description, "too large")
      yield* Effect.promise(() => written.closed)
      assert.isBelow(written.bytes, ceiling)
    }))
})
