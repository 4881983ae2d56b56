import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"

import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { assert, describe, it } from "@effect/vitest"
import { Token } from "@strava-auth/core"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"

import * as TokenFile from "../src/TokenFile.js"
import { tempDir as scratch } from "./harness.js"

const tokens = new Token.TokenSet({
  tokenType: "Bearer",
  accessToken: Redacted.make("access-aaaaaaaaaaaaaaaaaaaa"),
  refreshToken: Redacted.make("refresh-rrrrrrrrrrrrrrrrrr"),
  expiresAt: 1_800_000_000,
  scopes: ["read", "activity:read"],
  athlete: { id: 1001, firstname: "Marianne", lastname: "Mock" }
})

// removed when the test ends, passed or failed
const tempDir = () => scratch("strava-auth-test-")

describe("TokenFile", () => {
  it.effect("writes 0600 in a 0700 directory it creates, with Strava's field names", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const file = Path.join(dir, "nested", "token.json")
      yield* TokenFile.write(file, tokens)
      assert.strictEqual(Fs.statSync(file).mode & 0o777, 0o600)
      assert.strictEqual(Fs.statSync(Path.dirname(file)).mode & 0o777, 0o700)
      const json = JSON.parse(Fs.readFileSync(file, "utf8"))
      assert.strictEqual(json.access_token, "access-aaaaaaaaaaaaaaaaaaaa")
      assert.strictEqual(json.refresh_token, "refresh-rrrrrrrrrrrrrrrrrr")
      assert.strictEqual(json.expires_at, 1_800_000_000)
      assert.strictEqual(json.scope, "read,activity:read")
      assert.strictEqual(json.version, 1)
      assert.strictEqual(json.athlete.id, 1001)
      assert.deepStrictEqual(Fs.readdirSync(Path.dirname(file)), ["token.json"]) // no temp file left
      const back = Option.getOrThrow(yield* TokenFile.read(file))
      assert.isTrue(back.sameAccessToken(tokens) && back.sameRefreshToken(tokens))
      assert.deepStrictEqual(back.scopes, tokens.scopes)
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("jq -r .access_token reads the file", () =>
    Effect.gen(function*() {
      const file = Path.join(tempDir(), "token.json")
      yield* TokenFile.write(file, tokens)
      let out: string
      try {
        out = execFileSync("jq", ["-r", ".access_token", file], { encoding: "utf8" }).trim()
      } catch {
        out = execFileSync(process.execPath, ["-e", `console.log(require(${JSON.stringify(file)}).access_token)`], {
          encoding: "utf8"
        }).trim()
      }
      assert.strictEqual(out, "access-aaaaaaaaaaaaaaaaaaaa")
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("a missing file is None", () =>
    Effect.gen(function*() {
      assert.isTrue(Option.isNone(yield* TokenFile.read(Path.join(tempDir(), "absent.json"))))
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("refuses a file readable by group or others, saying how to fix it", () =>
    Effect.gen(function*() {
      const file = Path.join(tempDir(), "token.json")
      yield* TokenFile.write(file, tokens)
      Fs.chmodSync(file, 0o644)
      const error = yield* Effect.flip(TokenFile.read(file))
      assert.strictEqual(error.reason, "Permissions")
      assert.include(error.message, `chmod 600 ${file}`)
      assert.include(error.message, "0644")
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("a malformed file is a clear error naming the bad fields, and is left untouched", () =>
    Effect.gen(function*() {
      const file = Path.join(tempDir(), "token.json")
      const text = JSON.stringify({ version: 1, access_token: "x", expires_at: "soon" })
      Fs.writeFileSync(file, text, { mode: 0o600 })
      const error = yield* Effect.flip(TokenFile.read(file))
      assert.strictEqual(error.reason, "Malformed")
      assert.include(error.message, "expires_at")
      assert.include(error.message, "refresh_token")
      assert.notInclude(error.message, "\"x\"")
      assert.strictEqual(Fs.readFileSync(file, "utf8"), text)
      const truncated = yield* Effect.flip(TokenFile.decode(file, "{\"version\":1,\"acc"))
      assert.strictEqual(truncated.reason, "Malformed")
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.live(
    "the lock serializes two holders, and a lock left by a dead process is taken over",
    () =>
      Effect.gen(function*() {
        const file = Path.join(tempDir(), "token.json")
        const order: Array<string> = []
        const entered = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const first = yield* Effect.fork(TokenFile.withLock(
          file,
          Effect.gen(function*() {
            order.push("first in")
            yield* Deferred.succeed(entered, undefined)
            yield* Deferred.await(release)
            order.push("first out")
          })
        ))
        yield* Deferred.await(entered)
        const second = yield* Effect.fork(TokenFile.withLock(file, Effect.sync(() => order.push("second in"))))
        // While the first holds the lock, the second keeps trying (every 50 ms) and does not get in.
        const early = yield* Fiber.join(second).pipe(Effect.timeout("300 millis"), Effect.option)
        assert.isTrue(Option.isNone(early))
        assert.deepStrictEqual(order, ["first in"])
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(first)
        yield* Fiber.join(second)
        assert.deepStrictEqual(order, ["first in", "first out", "second in"])
        assert.isFalse(Fs.existsSync(`${file}.lock`))
        // a dead owner (pid 2^22 + 1 is beyond Linux's pid_max default)
        Fs.writeFileSync(`${file}.lock`, "4194305\n")
        const value = yield* TokenFile.withLock(file, Effect.succeed("taken"), { timeout: "5 seconds" })
        assert.strictEqual(value, "taken")
      }).pipe(Effect.provide(NodeFileSystem.layer)),
    { timeout: 20_000 }
  )
})
