import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"

import * as OAuthState from "../src/OAuthState.js"

describe("OAuthState", () => {
  it.effect("generates 32 random bytes as 43 base64url characters, different each time", () =>
    Effect.gen(function*() {
      const states = yield* Effect.all(Array.from({ length: 50 }, () => OAuthState.generate))
      for (const state of states) assert.match(state, /^[A-Za-z0-9_-]{43}$/)
      assert.strictEqual(new Set(states).size, states.length)
    }))

  it("base64url matches Node's encoding", () => {
    FastCheck.assert(FastCheck.property(FastCheck.uint8Array(), (bytes) => {
      assert.strictEqual(OAuthState.base64url(bytes), Buffer.from(bytes).toString("base64url"))
    }))
  })

  it("equals is true exactly for identical strings", () => {
    FastCheck.assert(FastCheck.property(FastCheck.string(), FastCheck.string(), (a, b) => {
      assert.strictEqual(OAuthState.equals(a, b), a === b)
      assert.isTrue(OAuthState.equals(a, a))
    }))
    assert.isFalse(OAuthState.equals("abc", "abcd"))
    assert.isFalse(OAuthState.equals("abc", ""))
  })
})
