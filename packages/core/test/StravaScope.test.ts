import { assert, describe, it } from "@effect/vitest"
import * as Arbitrary from "effect/Arbitrary"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Schema from "effect/Schema"

import * as StravaScope from "../src/StravaScope.js"

describe("StravaScope", () => {
  it.effect("parses Strava's comma-separated list, tolerating spaces and duplicates", () =>
    Effect.gen(function*() {
      const scopes = yield* StravaScope.parse(" read, activity:read_all,,read ")
      assert.deepStrictEqual(scopes, ["read", "activity:read_all"])
    }))

  it.effect("refuses an unknown scope with a typed error naming it and the known ones", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(StravaScope.parse("read,activity:read,view_private"))
      assert.strictEqual(error._tag, "InvalidScope")
      assert.deepStrictEqual(error.unknown, ["view_private"])
      assert.include(error.message, "\"view_private\"")
      assert.include(error.message, "activity:read_all")
    }))

  it.effect("refuses a space-separated list (the mistake generic OAuth clients make)", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(StravaScope.parse("read activity:read"))
      assert.deepStrictEqual(error.unknown, ["read activity:read"])
    }))

  it("format and parse round-trip any list of scopes", () => {
    const scopes = Arbitrary.make(Schema.Array(StravaScope.StravaScope))
    FastCheck.assert(FastCheck.property(scopes, (list) => {
      const parsed = Effect.runSync(StravaScope.parse(StravaScope.format(list)))
      assert.deepStrictEqual(parsed, Array.from(new Set(list)))
    }))
  })

  it("missing lists required scopes not granted, with _all covering its plain sibling", () => {
    assert.deepStrictEqual(StravaScope.missing(["read", "activity:read"], ["read"]), ["activity:read"])
    assert.deepStrictEqual(StravaScope.missing(["read", "activity:read"], ["read", "activity:read_all"]), [])
    assert.deepStrictEqual(StravaScope.missing(["activity:read_all"], ["activity:read"]), ["activity:read_all"])
    assert.deepStrictEqual(StravaScope.missing(["read"], ["read_all"]), [])
  })
})
