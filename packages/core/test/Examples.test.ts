import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import { MockServer, Simulator } from "@strava-auth/testing"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

import * as Callback from "../src/Callback.js"
import * as OAuthState from "../src/OAuthState.js"
import * as StravaConfig from "../src/StravaConfig.js"
import * as StravaOAuth from "../src/StravaOAuth.js"
import * as Token from "../src/Token.js"

const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "../../..")
const app = Simulator.defaultApp

/** A temporary directory, removed when the scope closes. */
const tempDirectory = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "strava-auth-example-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

/**
 * Runs an example with tsx the way the README says, with `@strava-auth/*` resolved to the sources (a
 * tsconfig with `paths`), so the example runs against the code under test and not a stale build.
 */
const runExample = (dir: string, example: string, args: ReadonlyArray<string>, env: Record<string, string>) =>
  Effect.async<{ readonly code: number | null; readonly stdout: string; readonly stderr: string }>((resume) => {
    const tsconfig = Path.join(dir, "tsconfig.json")
    Fs.writeFileSync(
      tsconfig,
      JSON.stringify({
        extends: Path.join(root, "packages/core/tsconfig.test.json"),
        compilerOptions: {
          paths: {
            "@strava-auth/core": [Path.join(root, "packages/core/src/index.ts")],
            "@strava-auth/core/*": [Path.join(root, "packages/core/src/*.ts")]
          }
        }
      })
    )
    const child = ChildProcess.execFile(
      Path.join(root, "node_modules/.bin/tsx"),
      ["--tsconfig", tsconfig, Path.join(root, "packages/core/examples", example), ...args],
      { cwd: root, env: { PATH: process.env.PATH ?? "", HOME: dir, ...env }, timeout: 60_000 },
      (error, stdout, stderr) =>
        resume(Effect.succeed({ code: error === null ? 0 : error.code as number, stdout, stderr }))
    )
    return Effect.sync(() => child.kill())
  })

describe("examples", () => {
  it.scopedLive("app.ts (the README's quick start) prints the athlete and saves the rotated token set", () =>
    Effect.gen(function*() {
      const { mock, server } = yield* MockServer.make()
      const config = StravaConfig.layer({
        clientId: app.clientId,
        clientSecret: app.clientSecret,
        baseUrl: server.url,
        apiUrl: server.apiUrl
      })
      // A real login against the mock server: the authorize page's form, the redirect, the exchange.
      const tokens = yield* Effect.gen(function*() {
        const oauth = yield* StravaOAuth.StravaOAuth
        const http = yield* HttpClient.HttpClient
        const state = yield* OAuthState.generate
        const redirectUri = "http://127.0.0.1:8123/authorization"
        const url = new URL(yield* oauth.authorizeUrl({ redirectUri, state, scope: ["read", "activity:read"] }))
        const accepted = yield* http.execute(
          HttpClientRequest.post(`${server.url}/oauth/accept`).pipe(HttpClientRequest.bodyUrlParams({
            ...Object.fromEntries(url.searchParams),
            decision: "authorize",
            grant: ["read", "activity:read"]
          }))
        )
        assert.strictEqual(accepted.status, 302)
        const callback = yield* Callback.parse(accepted.headers.location!, { state })
        return yield* oauth.exchangeCode(callback)
      }).pipe(Effect.provide(StravaOAuth.layer.pipe(Layer.provideMerge(config))))
      const dir = yield* tempDirectory
      const file = Path.join(dir, "tokens.json")
      Fs.writeFileSync(file, yield* Schema.encode(Schema.parseJson(Token.TokenSet))(tokens), { mode: 0o600 })
      // Strava says the token expired (it was revoked early): the example gets a 401 and must refresh.
      yield* mock.expireAccessTokens()
      const result = yield* runExample(dir, "app.ts", [file], {
        STRAVA_CLIENT_ID: app.clientId,
        STRAVA_CLIENT_SECRET: app.clientSecret,
        STRAVA_BASE_URL: server.url,
        STRAVA_API_URL: server.apiUrl
      })
      assert.strictEqual(result.code, 0, result.stderr)
      const athlete = JSON.parse(result.stdout.trim().split("\n").at(-1)!) as { id: number; firstname: string }
      assert.strictEqual(athlete.id, Simulator.defaultAthlete.id)
      assert.strictEqual(athlete.firstname, Simulator.defaultAthlete.firstname)
      const log = yield* mock.log
      assert.deepStrictEqual(
        log.filter((e) => e.endpoint === "token").map((e) => e.outcome),
        ["exchanged", "refreshed"]
      )
      // The file now holds the set Strava rotated to, and nothing printed a token.
      const saved = yield* Schema.decode(Schema.parseJson(Token.TokenSet))(Fs.readFileSync(file, "utf8"))
      assert.strictEqual(Redacted.value(saved.refreshToken), yield* mock.liveRefreshToken())
      assert.isFalse(saved.sameAccessToken(tokens))
      for (const secret of [tokens.accessToken, tokens.refreshToken, saved.accessToken, saved.refreshToken]) {
        assert.notInclude(result.stdout + result.stderr, Redacted.value(secret))
      }
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))
})
