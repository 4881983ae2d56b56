import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"

import * as AuthorizeUrl from "../src/AuthorizeUrl.js"

// Expected strings are stravalib 2.5's Client.authorization_url output for the same arguments.
describe("AuthorizeUrl", () => {
  it.effect("matches stravalib's reference URL for client_id=1, redirect_uri=www.example.com", () =>
    Effect.gen(function*() {
      const url = yield* AuthorizeUrl.make({ clientId: 1, redirectUri: "www.example.com" })
      assert.strictEqual(
        url,
        "https://www.strava.com/oauth/authorize?client_id=1&redirect_uri=www.example.com&approval_prompt=auto" +
          "&scope=read%2Cactivity%3Aread&response_type=code"
      )
    }))

  it.effect("puts state last, percent-encoded like quote_plus", () =>
    Effect.gen(function*() {
      const url = yield* AuthorizeUrl.make({ clientId: 1, redirectUri: "www.example.com", state: "a b/c~d*" })
      assert.isTrue(url.endsWith("&response_type=code&state=a+b%2Fc~d%2A"))
    }))

  it.effect("encodes a loopback redirect URI, forced prompt and a scope list as stravalib does", () =>
    Effect.gen(function*() {
      const url = yield* AuthorizeUrl.make({
        clientId: "33892",
        redirectUri: "http://127.0.0.1:8000/authorization",
        approvalPrompt: "force",
        scope: ["read_all", "profile:read_all", "activity:read_all"]
      })
      assert.strictEqual(
        url,
        "https://www.strava.com/oauth/authorize?client_id=33892" +
          "&redirect_uri=http%3A%2F%2F127.0.0.1%3A8000%2Fauthorization&approval_prompt=force" +
          "&scope=read_all%2Cprofile%3Aread_all%2Cactivity%3Aread_all&response_type=code"
      )
    }))

  it.effect("builds the mobile URL on a configurable base", () =>
    Effect.gen(function*() {
      const url = yield* AuthorizeUrl.make({
        clientId: 7,
        redirectUri: "myapp://cb",
        scope: "read",
        mobile: true,
        baseUrl: "http://127.0.0.1:9/"
      })
      assert.strictEqual(
        url,
        "http://127.0.0.1:9/oauth/mobile/authorize?client_id=7&redirect_uri=myapp%3A%2F%2Fcb&approval_prompt=auto" +
          "&scope=read&response_type=code"
      )
    }))

  it.effect("drops every trailing slash of the base, so the path is never doubled", () =>
    Effect.gen(function*() {
      for (const baseUrl of ["http://127.0.0.1:9", "http://127.0.0.1:9/", "http://127.0.0.1:9///"]) {
        const url = yield* AuthorizeUrl.make({ clientId: 7, redirectUri: "x", scope: "read", baseUrl })
        assert.isTrue(url.startsWith("http://127.0.0.1:9/oauth/authorize?client_id=7&"), `${baseUrl}: ${url}`)
      }
    }))

  it.effect("fails on an unknown scope before building anything", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(AuthorizeUrl.make({ clientId: 1, redirectUri: "x", scope: "read,write" }))
      assert.strictEqual(error._tag, "InvalidScope")
      assert.deepStrictEqual(error.unknown, ["write"])
    }))

  it("quotePlus output decodes back to its input and uses only quote_plus's safe characters", () => {
    FastCheck.assert(FastCheck.property(FastCheck.fullUnicodeString(), (s) => {
      const encoded = AuthorizeUrl.quotePlus(s)
      assert.match(encoded, /^[A-Za-z0-9_.~+%-]*$/)
      assert.strictEqual(decodeURIComponent(encoded.replace(/\+/g, " ")), s)
    }))
  })
})
