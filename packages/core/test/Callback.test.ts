import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Redacted from "effect/Redacted"

import * as Callback from "../src/Callback.js"

const state = "Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dXg"

describe("Callback", () => {
  it.effect("reads code, granted scopes (raw commas) and state from a full redirect URL", () =>
    Effect.gen(function*() {
      const cb = yield* Callback.parse(
        `http://localhost:8123/authorization?state=${state}&code=abc123&scope=read,activity:read_all`,
        { state }
      )
      assert.strictEqual(Redacted.value(cb.code), "abc123")
      assert.deepStrictEqual(cb.scopes, ["read", "activity:read_all"])
      assert.strictEqual(cb.state, state)
    }))

  it.effect("accepts a bare query string, with or without ?, and ignores a fragment", () =>
    Effect.gen(function*() {
      const a = yield* Callback.parse(`state=${state}&code=c1&scope=read`, { state })
      const b = yield* Callback.parse(`?state=${state}&code=c2&scope=read#_=_`, { state })
      assert.strictEqual(Redacted.value(a.code), "c1")
      assert.strictEqual(Redacted.value(b.code), "c2")
    }))

  it.effect("a denial is a typed AuthorizationDenied", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Callback.parse(`/authorization?state=${state}&error=access_denied`, { state }))
      assert.strictEqual(error._tag, "AuthorizationDenied")
      assert.include(error.message, "denied")
    }))

  it.effect("a missing state is a CSRF error, even for an otherwise valid redirect", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Callback.parse("?state=&code=abc&scope=read", { state }))
      assert.strictEqual(error._tag, "StateMismatch")
      assert.strictEqual(error._tag === "StateMismatch" && error.reason, "Missing")
    }))

  it.effect("a wrong state is a CSRF error that wins over error=access_denied", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Callback.parse("?state=forged&error=access_denied", { state }))
      assert.strictEqual(error._tag, "StateMismatch")
    }))

  it.effect("a redirect without a code is MissingCode", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Callback.parse(`?state=${state}&scope=read`, { state }))
      assert.strictEqual(error._tag, "MissingCode")
    }))

  it.effect("required scopes not granted fail with the list of what is missing", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Callback.parse(`?state=${state}&code=x&scope=read`, { state, requiredScopes: ["activity:read", "read"] })
      )
      assert.strictEqual(error._tag, "InsufficientScope")
      if (error._tag === "InsufficientScope") {
        assert.deepStrictEqual(error.missing, ["activity:read"])
        assert.include(error.message, "activity:read")
      }
    }))

  it.effect("accepts a URL object, ignoring its fragment", () =>
    Effect.gen(function*() {
      const cb = yield* Callback.parse(new URL(`http://localhost:8123/cb?state=${state}&code=u1&scope=read#_=_`), {
        state
      })
      assert.strictEqual(Redacted.value(cb.code), "u1")
      assert.deepStrictEqual(cb.scopes, ["read"])
    }))

  it.effect("trims whitespace around a pasted redirect, for a URL and for a bare query", () =>
    Effect.gen(function*() {
      const url = yield* Callback.parse(`  http://localhost:8123/cb?state=${state}&scope=read&code=w1 \n`, { state })
      const bare = yield* Callback.parse(`\t state=${state}&scope=read&code=w2  `, { state })
      assert.strictEqual(Redacted.value(url.code), "w1")
      assert.strictEqual(Redacted.value(bare.code), "w2")
    }))

  it.effect("a redirect with no state parameter at all is StateMismatch Missing, not Mismatch", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Callback.parse("?code=abc&scope=read", { state }))
      assert.strictEqual(error._tag === "StateMismatch" && error.reason, "Missing")
    }))

  it.effect("an empty code is MissingCode", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Callback.parse(`?state=${state}&code=&scope=read`, { state }))
      assert.strictEqual(error._tag, "MissingCode")
    }))

  it.effect("scopes this version does not know are dropped; no scope parameter grants none", () =>
    Effect.gen(function*() {
      const unknown = yield* Callback.parse(`?state=${state}&code=x&scope=read,future:scope,activity:read`, { state })
      assert.deepStrictEqual(unknown.scopes, ["read", "activity:read"])
      const none = yield* Callback.parse(`?state=${state}&code=x`, { state })
      assert.deepStrictEqual(none.scopes, [])
    }))

  it("never throws on arbitrary input: it succeeds or fails with a typed error", () => {
    FastCheck.assert(FastCheck.property(FastCheck.string(), (input) => {
      const exit = Effect.runSyncExit(Callback.parse(input, { state }))
      if (exit._tag === "Failure") {
        assert.strictEqual(exit.cause._tag, "Fail")
      }
    }))
  })
})
