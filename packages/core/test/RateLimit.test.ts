import { assert, describe, it } from "@effect/vitest"
import * as FastCheck from "effect/FastCheck"
import * as Option from "effect/Option"

import * as RateLimit from "../src/RateLimit.js"

describe("RateLimit", () => {
  it("15-minute windows reset at :00, :15, :30 and :45 UTC", () => {
    assert.strictEqual(RateLimit.nextFifteenMinuteReset(Date.UTC(2026, 0, 1, 9, 0)), Date.UTC(2026, 0, 1, 9, 15))
    assert.strictEqual(RateLimit.nextFifteenMinuteReset(Date.UTC(2026, 0, 1, 9, 44, 59)), Date.UTC(2026, 0, 1, 9, 45))
    assert.strictEqual(RateLimit.nextFifteenMinuteReset(Date.UTC(2026, 0, 1, 23, 59)), Date.UTC(2026, 0, 2))
  })

  it("the next reset is always in the future and within its window", () => {
    FastCheck.assert(FastCheck.property(FastCheck.integer({ min: 0, max: 4e12 }), (now) => {
      const q = RateLimit.nextFifteenMinuteReset(now)
      const d = RateLimit.nextDailyReset(now)
      assert.isTrue(q > now && q - now <= 15 * 60_000 && q % (15 * 60_000) === 0)
      assert.isTrue(d > now && d - now <= 86_400_000 && d % 86_400_000 === 0)
    }))
  })

  it("parses the headers in any case and ignores malformed values", () => {
    const limits = RateLimit.fromHeaders({ "X-RATELIMIT-LIMIT": "200,2000", "x-ratelimit-usage": "abc" })
    assert.deepStrictEqual(Option.getOrThrow(limits.limit), { fifteenMinutes: 200, daily: 2000 })
    assert.isTrue(Option.isNone(limits.usage))
    assert.isTrue(Option.isNone(limits.readLimit))
  })
})
