// `strava-auth webhook create|view|delete` (the bundled command) against the mock Strava server, which
// validates the callback as Strava does: a GET with hub.challenge and the verify token.
import * as Fs from "node:fs"
import * as Path from "node:path"

import { assert, describe, it } from "@effect/vitest"
import { MockServer, Simulator } from "@strava-auth/testing"
import * as Effect from "effect/Effect"

import { callbackServer, run, sandbox, tempDir } from "./harness.js"

describe("strava-auth webhook", () => {
  it.scoped("create subscribes (Strava validates the callback), view shows it, create again is a no-op, delete removes it", () =>
    Effect.gen(function*() {
      const { server } = yield* MockServer.make()
      const callback = yield* callbackServer("the-verify-token")
      const box = sandbox(server, { STRAVA_WEBHOOK_VERIFY_TOKEN: "the-verify-token" })
      const created = yield* run(["webhook", "create", "--callback-url", callback.url], box.env)
      assert.strictEqual(created.code, 0, created.stderr)
      const id = created.stdout.trim()
      assert.match(id, /^\d+$/)
      assert.include(created.stderr, `Subscribed: push subscription ${id} sends events to ${callback.url}`)

      const view = yield* run(["webhook", "view"], box.env)
      assert.strictEqual(view.stdout.trim(), `${id} ${callback.url}`)
      const json = yield* run(["webhook", "view", "--json"], box.env)
      assert.strictEqual(JSON.parse(json.stdout).id, Number(id))

      const again = yield* run(["webhook", "create", "--callback-url", callback.url], box.env)
      assert.strictEqual(again.code, 0)
      assert.include(again.stderr, `Already subscribed: push subscription ${id}`)

      const other = yield* run(["webhook", "create", "--callback-url", "http://127.0.0.1:9/other"], box.env)
      assert.strictEqual(other.code, 64)
      assert.include(other.stderr, "already has push subscription")
      assert.include(other.stderr, "Delete it first")

      const deleted = yield* run(["webhook", "delete"], box.env)
      assert.strictEqual(deleted.code, 0, deleted.stderr)
      assert.include(deleted.stderr, `Deleted push subscription ${id}`)
      const none = yield* run(["webhook", "view"], box.env)
      assert.include(none.stderr, "no push subscription")
      for (const result of [created, view, again, other, deleted, none]) {
        assert.notInclude(result.stdout + result.stderr, Simulator.defaultApp.clientSecret)
        assert.notInclude(result.stdout + result.stderr, "the-verify-token")
      }
    }))

  it.scoped("a callback that does not answer the challenge: Strava's refusal is said plainly, and nothing is subscribed", () =>
    Effect.gen(function*() {
      const { server } = yield* MockServer.make()
      const callback = yield* callbackServer("the-verify-token", 500)
      const box = sandbox(server, { STRAVA_WEBHOOK_VERIFY_TOKEN: "the-verify-token" })
      const created = yield* run(["webhook", "create", "--callback-url", callback.url], box.env)
      assert.strictEqual(created.code, 78)
      assert.include(created.stderr, `Strava could not validate ${callback.url}`)
      assert.notInclude(created.stderr, Simulator.defaultApp.clientSecret)
      const view = yield* run(["webhook", "view"], box.env)
      assert.include(view.stderr, "no push subscription")
    }))

  it.scoped("the verify token comes from a file or the environment, never the command line; none is a usage error", () =>
    Effect.gen(function*() {
      const { server } = yield* MockServer.make()
      const callback = yield* callbackServer("from-a-file")
      const box = sandbox(server)
      const missing = yield* run(["webhook", "create", "--callback-url", callback.url], box.env)
      assert.strictEqual(missing.code, 64)
      assert.include(missing.stderr, "STRAVA_WEBHOOK_VERIFY_TOKEN")
      const file = Path.join(tempDir("vt-"), "verify-token")
      Fs.writeFileSync(file, "from-a-file\n", { mode: 0o600 })
      const created = yield* run(
        ["webhook", "create", "--callback-url", callback.url, "--verify-token-file", file],
        box.env
      )
      assert.strictEqual(created.code, 0, created.stderr)
    }))
})
