import * as Fs from "node:fs"

import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import { StravaClient, TokenSource } from "@strava-auth/core"
import { MockServer } from "@strava-auth/testing"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"

import * as DaemonTokenSource from "../src/DaemonTokenSource.js"
import { daemon, login, sandbox } from "./harness.js"

// An Effect app using the daemon's socket or file through core's StravaClient, against the real daemon.
describe("DaemonTokenSource", () => {
  it.live("the socket source feeds StravaClient; needs_login becomes LoginRequired; no daemon is TokenUnavailable", () =>
    Effect.scoped(Effect.gen(function*() {
      const { mock, server } = yield* MockServer.make()
      const box = sandbox(server)
      yield* login(box, server)
      const app = StravaClient.layerWith({ apiUrl: server.apiUrl }).pipe(
        Layer.provide(DaemonTokenSource.layerSocket(box.socket)),
        Layer.provide(NodeHttpClient.layerUndici)
      )
      const down = yield* Effect.flip(DaemonTokenSource.makeSocket(box.socket).get)
      assert.strictEqual(down._tag, "TokenUnavailable")
      yield* Effect.scoped(Effect.gen(function*() {
        yield* daemon(box)
        const response = yield* Effect.flatMap(StravaClient.StravaClient, (client) => client.get("/athlete")).pipe(
          Effect.provide(app)
        )
        assert.strictEqual(response.status, 200)
        yield* mock.revokeAthlete()
        const source = DaemonTokenSource.makeSocket(box.socket)
        const refused = yield* Effect.flip(source.invalidate(yield* source.get))
        assert.strictEqual(refused._tag, "LoginRequired")
      }))
    })))

  it.live("the file source reads what the daemon keeps, and refuses an expired file without refreshing", () =>
    Effect.scoped(
      Effect.gen(function*() {
        const { mock, server } = yield* MockServer.make()
        const box = sandbox(server)
        yield* login(box, server)
        const source = yield* DaemonTokenSource.makeFile(box.tokenFile)
        const token = yield* source.get
        assert.strictEqual(Redacted.value(token), JSON.parse(Fs.readFileSync(box.tokenFile, "utf8")).access_token)
        const json = JSON.parse(Fs.readFileSync(box.tokenFile, "utf8"))
        Fs.writeFileSync(box.tokenFile, JSON.stringify({ ...json, expires_at: 1 }), { mode: 0o600 })
        const expired = yield* Effect.flip(source.get)
        assert.strictEqual(expired._tag, "TokenUnavailable")
        assert.isTrue(expired.transient)
        assert.strictEqual((yield* mock.log).filter((e) => e.grantType === "refresh_token").length, 0)
        Fs.rmSync(box.tokenFile)
        const gone = yield* Effect.flip(source.get)
        assert.instanceOf(gone, TokenSource.LoginRequired)
      }).pipe(Effect.provide(NodeFileSystem.layer))
    ))
})
