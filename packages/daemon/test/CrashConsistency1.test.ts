import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"

import { crashes } from "./crash.js"

describe("crash consistency (1 of 2)", () => {
  it.live(
    "100 kill -9 during forced refreshes: the file always parses, no persisted rotation is ever lost",
    () =>
      Effect.gen(function*() {
        const tally = yield* crashes(100, 1)
        console.log(`crash consistency 1: ${JSON.stringify(tally)}`)
        assert.strictEqual(tally.kills, 100)
        assert.strictEqual(tally.live + tally.lostInFlight, tally.kills)
        assert.isAtLeast(tally.refreshes, tally.kills) // every kill landed in a burst of refreshes
        assert.isAbove(tally.live, 0)
      }),
    { timeout: 240_000 }
  )
})
