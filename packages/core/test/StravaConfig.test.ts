import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { assert, describe, it, onTestFinished } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"

import * as StravaConfig from "../src/StravaConfig.js"

const withEnv = (env: Record<string, string>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("StravaConfig.fromEnv", () => {
  it.effect("reads the id, the secret as Redacted, and Strava's URLs by default", () =>
    Effect.gen(function*() {
      const config = yield* StravaConfig.fromEnv.pipe(
        withEnv({ STRAVA_CLIENT_ID: " 12345 ", STRAVA_CLIENT_SECRET: "s3cret" })
      )
      assert.strictEqual(config.clientId, "12345")
      assert.strictEqual(Redacted.value(config.clientSecret), "s3cret")
      assert.strictEqual(String(config.clientSecret), "<redacted>")
      assert.strictEqual(config.baseUrl, "https://www.strava.com")
      assert.strictEqual(config.apiUrl, "https://www.strava.com/api/v3")
      assert.strictEqual(Duration.toMillis(config.timeout), 10_000)
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("takes the secret from STRAVA_CLIENT_SECRET_FILE, without its trailing newline", () =>
    Effect.gen(function*() {
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cfg-"))
      onTestFinished(() => Fs.rmSync(dir, { recursive: true, force: true }))
      const file = Path.join(dir, "secret")
      Fs.writeFileSync(file, "from-file\n")
      const config = yield* StravaConfig.fromEnv.pipe(
        withEnv({ STRAVA_CLIENT_ID: "1", STRAVA_CLIENT_SECRET_FILE: file, STRAVA_BASE_URL: "http://127.0.0.1:9/" })
      )
      assert.strictEqual(Redacted.value(config.clientSecret), "from-file")
      assert.strictEqual(config.baseUrl, "http://127.0.0.1:9")
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("names the variable and what to do when something is missing or wrong", () =>
    Effect.gen(function*() {
      const noSecret = yield* Effect.flip(StravaConfig.fromEnv.pipe(withEnv({ STRAVA_CLIENT_ID: "1" })))
      assert.include(String(noSecret), "STRAVA_CLIENT_SECRET")
      const badId = yield* Effect.flip(
        StravaConfig.fromEnv.pipe(withEnv({ STRAVA_CLIENT_ID: "abc", STRAVA_CLIENT_SECRET: "x" }))
      )
      assert.include(String(badId), "numeric Client ID")
      const badFile = yield* Effect.flip(
        StravaConfig.fromEnv.pipe(withEnv({ STRAVA_CLIENT_ID: "1", STRAVA_CLIENT_SECRET_FILE: "/nonexistent/secret" }))
      )
      assert.include(String(badFile), "/nonexistent/secret")
      const badUrl = yield* Effect.flip(
        StravaConfig.fromEnv.pipe(
          withEnv({ STRAVA_CLIENT_ID: "1", STRAVA_CLIENT_SECRET: "x", STRAVA_API_URL: "ftp://x" })
        )
      )
      assert.include(String(badUrl), "STRAVA_API_URL")
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})
