// The engine's and the grant store's errors: what each says a caller should do (`transient`) and what its
// message tells a person, without a token in it.
import { assert, describe, it } from "@effect/vitest"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"

import * as GrantStore from "../src/GrantStore.js"
import * as RefreshEngine from "../src/RefreshEngine.js"
import { TokenSet } from "../src/Token.js"

const set = (n: number) =>
  new TokenSet({
    tokenType: "Bearer",
    accessToken: Redacted.make(`access-${n}-secret`),
    refreshToken: Redacted.make(`refresh-${n}-secret`),
    expiresAt: 1_800_000_000,
    scopes: ["read"]
  })

const storeError = (reason: GrantStore.GrantStoreError["reason"]) =>
  new GrantStore.GrantStoreError({ key: "default", reason, location: "/state/token.json", detail: "disk says no" })

describe("GrantStoreError", () => {
  it("is transient for I/O and a busy lock, not for what a person must fix", () => {
    assert.isTrue(storeError("Io").transient)
    assert.isTrue(storeError("Busy").transient)
    assert.isFalse(storeError("NoSpace").transient)
    assert.isFalse(storeError("Malformed").transient)
    assert.isFalse(storeError("Permissions").transient)
  })

  it("names the store and the problem", () => {
    assert.strictEqual(storeError("Io").message, "grant store /state/token.json: disk says no")
  })
})

describe("StaleGrant", () => {
  it("is transient and says the newer grant was kept", () => {
    const error = new GrantStore.StaleGrant({ key: "athlete-7" })
    assert.isTrue(error.transient)
    assert.strictEqual(error.message, `the stored grant "athlete-7" changed since it was read; the newer one was kept.`)
  })
})

describe("the engine's errors", () => {
  it("LoginRequired is permanent and says to log in again", () => {
    const error = new RefreshEngine.LoginRequired({ reason: "The grant was revoked." })
    assert.isFalse(error.transient)
    assert.strictEqual(error.message, "The grant was revoked. Log in to Strava again (strava-auth login).")
  })

  it("TokenUnavailable is transient and says to try again", () => {
    const error = new RefreshEngine.TokenUnavailable({ reason: "Strava is down." })
    assert.isTrue(error.transient)
    assert.strictEqual(
      error.message,
      "No valid Strava access token is available right now: Strava is down. Try again shortly."
    )
  })

  it("GrantUnsaved is transient, says the set is kept, and carries no token in its message", () => {
    const error = new RefreshEngine.GrantUnsaved({
      key: "default",
      tokens: set(2),
      previous: set(1),
      error: storeError("Io")
    })
    assert.isTrue(error.transient)
    assert.include(error.message, "grant store /state/token.json: disk says no")
    assert.include(error.message, "Strava has already rotated the refresh token")
    assert.notInclude(error.message, "secret")
  })

  it("RefreshAborted is transient and says what happened", () => {
    const error = new RefreshEngine.RefreshAborted({ detail: "the refresh helper exited with 1 without a report" })
    assert.isTrue(error.transient)
    assert.strictEqual(error.message, "the refresh helper exited with 1 without a report")
  })
})

describe("GrantStore.mayReplace", () => {
  it("lets an unconditional write through, and a compare-and-set only over the set it replaces", () => {
    assert.isTrue(GrantStore.mayReplace(Option.none(), undefined))
    assert.isTrue(GrantStore.mayReplace(Option.some(set(1)), {}))
    assert.isTrue(GrantStore.mayReplace(Option.some(set(1)), { replaces: set(1) }))
    assert.isFalse(GrantStore.mayReplace(Option.some(set(2)), { replaces: set(1) }))
    assert.isFalse(GrantStore.mayReplace(Option.none(), { replaces: set(1) }))
  })
})
