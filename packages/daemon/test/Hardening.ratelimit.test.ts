// POST /refresh in a loop cannot spend the app's rate limit (the hardening issue's "A broken client on the
// socket"): forced refreshes within the floor are coalesced, and the reply says so.
import { assert, describe, it } from "@effect/vitest"
import { MockServer } from "@strava-auth/testing"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"

import * as Wire from "../src/Wire.js"
import { daemon, login, sandbox, socketGet } from "./harness.js"

describe("POST /refresh in a loop", () => {
  it.live(
    "20 forced refreshes in a row ask Strava once; the others say they were coalesced",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const { mock, server } = yield* MockServer.make()
        const box = sandbox(server)
        assert.strictEqual((yield* login(box, server)).result.code, 0)
        yield* daemon(box)
        const outcomes: Array<string> = []
        for (let i = 0; i < 20; i++) {
          const reply = yield* Effect.promise(() => socketGet(box.socket, "/refresh", "POST"))
          assert.strictEqual(reply._tag === "Reply" && reply.status, 200)
          const body = reply._tag === "Reply" ? Wire.decodeRefreshReply(reply.body) : Option.none()
          assert.isTrue(Option.isSome(body), "the reply is a RefreshReply")
          if (Option.isSome(body)) outcomes.push(body.value.outcome)
        }
        const asked = (yield* mock.log).filter((entry) => entry.grantType === "refresh_token")
        assert.strictEqual(asked.length, 1)
        assert.notStrictEqual(outcomes[0], "coalesced")
        assert.deepStrictEqual(outcomes.slice(1), Array.from({ length: 19 }, () => "coalesced"))
      })),
    60_000
  )
})
