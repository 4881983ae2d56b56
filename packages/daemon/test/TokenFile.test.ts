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

// What the mutation run (docs/RELIABILITY.md) found untested: the exact text written, the exact errors and their
// messages, the checks before a read, the stamp, the reservation, the clean-up of temp files, and the stores.
describe("TokenFile, exactly", () => {
  const bare = new Token.TokenSet({
    tokenType: "Bearer",
    accessToken: Redacted.make("access-aaaaaaaaaaaaaaaaaaaa"),
    refreshToken: Redacted.make("refresh-rrrrrrrrrrrrrrrrrr"),
    expiresAt: 1_800_000_000,
    scopes: ["read"]
  })
  const validJson = (fields: Record<string, unknown> = {}) =>
    JSON.stringify({
      version: 1,
      token_type: "Bearer",
      access_token: "access-aaaaaaaaaaaaaaaaaaaa",
      refresh_token: "refresh-rrrrrrrrrrrrrrrrrr",
      expires_at: 1_800_000_000,
      scope: "read",
      updated_at: "2026-01-02T03:04:05.678Z",
      ...fields
    })
  const malformed = (path: string, fields: string) =>
    `token file ${path}: it is not a strava-auth token file (bad or missing: ${fields}). It was left untouched; ` +
    "run `strava-auth login` to write a new one, or move it away."
  const privateFile = (dir: string, text: string | Buffer, mode = 0o600) => {
    const file = Path.join(dir, "token.json")
    Fs.writeFileSync(file, text, { mode })
    Fs.chmodSync(file, mode)
    return file
  }

  it("encode: Strava's field names in order, two-space indented, a null athlete, the write's ISO time, a final newline", () => {
    const text = TokenFile.encode(bare, Date.UTC(2026, 0, 2, 3, 4, 5, 678))
    assert.strictEqual(
      text,
      "{\n" +
        "  \"version\": 1,\n" +
        "  \"token_type\": \"Bearer\",\n" +
        "  \"access_token\": \"access-aaaaaaaaaaaaaaaaaaaa\",\n" +
        "  \"refresh_token\": \"refresh-rrrrrrrrrrrrrrrrrr\",\n" +
        "  \"expires_at\": 1800000000,\n" +
        "  \"scope\": \"read\",\n" +
        "  \"athlete\": null,\n" +
        "  \"updated_at\": \"2026-01-02T03:04:05.678Z\"\n" +
        "}\n"
    )
  })

  it.effect("decode: every field carried over; a null or absent athlete is none; unknown scopes are dropped", () =>
    Effect.gen(function*() {
      const decoded = yield* TokenFile.decode("f", validJson({ scope: "read, bogus,activity:read_all", athlete: null }))
      assert.strictEqual(decoded.tokenType, "Bearer")
      assert.strictEqual(Redacted.value(decoded.accessToken), "access-aaaaaaaaaaaaaaaaaaaa")
      assert.strictEqual(Redacted.value(decoded.refreshToken), "refresh-rrrrrrrrrrrrrrrrrr")
      assert.strictEqual(decoded.expiresAt, 1_800_000_000)
      assert.deepStrictEqual(decoded.scopes, ["read", "activity:read_all"])
      assert.isUndefined(decoded.athlete)
      assert.isFalse("athlete" in decoded && decoded.athlete !== undefined)
      assert.isUndefined((yield* TokenFile.decode("f", validJson())).athlete)
      const withAthlete = yield* TokenFile.decode("f", validJson({ athlete: { id: 7, firstname: "Ann" } }))
      assert.strictEqual(withAthlete.athlete?.id, 7)
      assert.strictEqual(withAthlete.athlete?.firstname, "Ann")
    }))

  it.effect("decode: the message names each bad field once, by its path, or the JSON itself, and no value", () =>
    Effect.gen(function*() {
      const notJson = yield* Effect.flip(TokenFile.decode("/x/token.json", "{\"version\":1,\"acc"))
      assert.strictEqual(notJson._tag, "TokenFileError")
      assert.strictEqual(notJson.reason, "Malformed")
      assert.strictEqual(notJson.path, "/x/token.json")
      assert.strictEqual(notJson.message, malformed("/x/token.json", "the JSON itself"))
      // every field of another version's file, in the format's order
      const other = yield* Effect.flip(TokenFile.decode("p", JSON.stringify({ version: 2 })))
      assert.strictEqual(
        other.message,
        malformed("p", "version, token_type, access_token, refresh_token, expires_at, scope, updated_at")
      )
      // an athlete that is neither null nor a summary fails both members of the union: named once
      const athlete = yield* Effect.flip(TokenFile.decode("p", validJson({ athlete: 5 })))
      assert.strictEqual(athlete.message, malformed("p", "athlete"))
      // a nested field by its dotted path (and the union's other member, null, by the athlete's); an empty token
      // is as bad as a missing one
      const nested = yield* Effect.flip(
        TokenFile.decode("p", validJson({ athlete: { id: "secret-value" }, access_token: "" }))
      )
      assert.strictEqual(nested.message, malformed("p", "access_token, athlete.id, athlete"))
      assert.notInclude(nested.message, "secret-value")
    }))

  it.effect("read: a symbolic link is refused (Permissions), not followed, with what to do", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const target = privateFile(dir, validJson())
      const link = Path.join(dir, "link.json")
      Fs.symlinkSync(target, link)
      const error = yield* Effect.flip(TokenFile.read(link))
      assert.strictEqual(error.reason, "Permissions")
      assert.strictEqual(error.path, link)
      assert.strictEqual(
        error.message,
        `token file ${link}: it is a symbolic link; strava-auth reads and writes only a regular file there. ` +
          "Remove the link (rm, which removes the link, not its target) and log in again, or point " +
          "STRAVA_AUTH_TOKEN_FILE at a file in a private directory."
      )
      // a link to nothing is refused the same way, not taken for a missing file
      const dangling = Path.join(dir, "dangling.json")
      Fs.symlinkSync(Path.join(dir, "absent"), dangling)
      assert.strictEqual((yield* Effect.flip(TokenFile.read(dangling))).reason, "Permissions")
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("read: a directory or a FIFO at the path is refused (Permissions) without opening it", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const notRegular = (path: string) =>
        `token file ${path}: it is not a regular file (a FIFO, a device or a directory). Move it away and log in again.`
      const sub = Path.join(dir, "token.json")
      Fs.mkdirSync(sub, { mode: 0o700 })
      const error = yield* Effect.flip(TokenFile.read(sub))
      assert.strictEqual(error.reason, "Permissions")
      assert.strictEqual(error.message, notRegular(sub))
      const fifo = Path.join(dir, "fifo.json")
      execFileSync("mkfifo", ["-m", "600", fifo])
      const refused = yield* Effect.flip(TokenFile.read(fifo)).pipe(Effect.timeout("5 seconds"))
      assert.strictEqual(refused.reason, "Permissions")
      assert.strictEqual(refused.message, notRegular(fifo))
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("read: any bit for group or others is refused with the mode and the chmod; 0600 and 0400 are read", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      for (const mode of [0o640, 0o604, 0o620, 0o602, 0o610, 0o601]) {
        const file = privateFile(dir, validJson(), mode)
        const error = yield* Effect.flip(TokenFile.read(file))
        assert.strictEqual(error.reason, "Permissions", mode.toString(8))
        assert.strictEqual(
          error.message,
          `token file ${file}: it is readable by group or others (mode 0${mode.toString(8)}), so the tokens in it ` +
            `may have leaked. Run: chmod 600 ${file} (and consider strava-auth revoke, then login).`
        )
      }
      for (const mode of [0o600, 0o400]) {
        const file = privateFile(dir, validJson(), mode)
        assert.isTrue(Option.isSome(yield* TokenFile.read(file)), mode.toString(8))
      }
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("read: 64 KB is the most a file may hold (read whole); one byte more is refused unread; empty is malformed", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const text = validJson()
      const padded = text + " ".repeat(64 * 1024 - text.length) // JSON allows trailing whitespace
      const full = privateFile(dir, padded)
      assert.strictEqual(Fs.statSync(full).size, 65536)
      const read = Option.getOrThrow(yield* TokenFile.read(full))
      assert.strictEqual(Redacted.value(read.refreshToken), "refresh-rrrrrrrrrrrrrrrrrr")
      const over = privateFile(dir, padded + " ")
      const error = yield* Effect.flip(TokenFile.read(over))
      assert.strictEqual(error.reason, "Malformed")
      assert.strictEqual(
        error.message,
        `token file ${over}: it holds 65537 bytes, more than a token file ever does (65536). It was left untouched; ` +
          "move it away and log in again."
      )
      // a valid file cut short at the end is malformed, not silently read
      const short = privateFile(dir, text.slice(0, -1))
      assert.strictEqual((yield* Effect.flip(TokenFile.read(short))).message, malformed(short, "the JSON itself"))
      const empty = privateFile(dir, "")
      assert.strictEqual((yield* Effect.flip(TokenFile.read(empty))).message, malformed(empty, "the JSON itself"))
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("readStamped and stamp give the file's inode, mtime and size (the same file twice: the same stamp)", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const file = Path.join(dir, "token.json")
      assert.isTrue(Option.isNone(yield* TokenFile.stamp(file)))
      assert.isTrue(Option.isNone(yield* TokenFile.readStamped(file)))
      yield* TokenFile.write(file, tokens)
      const info = Fs.statSync(file)
      const stamp = Option.getOrThrow(yield* TokenFile.stamp(file))
      assert.strictEqual(stamp.ino, info.ino)
      assert.isTrue(TokenFile.sameStamp(stamp, Option.getOrThrow(yield* TokenFile.stamp(file))))
      assert.strictEqual(stamp.size, info.size)
      assert.isAtMost(Math.abs(stamp.mtimeMs - info.mtimeMs), 1)
      const stamped = Option.getOrThrow(yield* TokenFile.readStamped(file))
      assert.strictEqual(stamped.stamp.size, info.size)
      assert.strictEqual(stamped.stamp.mtimeMs, stamp.mtimeMs)
      assert.isTrue(stamped.tokens.sameRefreshToken(tokens))
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it("sameStamp: the same inode, mtime and size; any one of them differing is another version", () => {
    const stamp: TokenFile.Stamp = { ino: 12, mtimeMs: 1_700_000_000_123, size: 336 }
    assert.isTrue(TokenFile.sameStamp(stamp, { ...stamp }))
    assert.isFalse(TokenFile.sameStamp(stamp, { ...stamp, ino: 13 }))
    assert.isFalse(TokenFile.sameStamp(stamp, { ...stamp, mtimeMs: stamp.mtimeMs + 1 }))
    assert.isFalse(TokenFile.sameStamp(stamp, { ...stamp, size: 337 }))
  })

  it.effect("reserve: a 4 KB temp file beside the token file, 0600, that write fills, cuts to length and renames", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      Fs.chmodSync(dir, 0o700)
      const file = Path.join(dir, "token.json")
      const space = yield* TokenFile.reserve(file)
      assert.strictEqual(Path.dirname(space), dir)
      assert.match(Path.basename(space), /^\.token\.json\.[0-9a-f]{12}\.tmp$/)
      assert.strictEqual(Fs.statSync(space).size, 4096)
      assert.strictEqual(Fs.statSync(space).mode & 0o777, 0o600)
      assert.isTrue(Fs.readFileSync(space).every((byte) => byte === 0))
      yield* TokenFile.write(file, bare, { reserved: space })
      assert.isFalse(Fs.existsSync(space))
      assert.deepStrictEqual(Fs.readdirSync(dir), ["token.json"])
      assert.strictEqual(Fs.readFileSync(file, "utf8"), TokenFile.encode(bare, 0)) // the TestClock's time
      assert.strictEqual(Fs.statSync(file).mode & 0o777, 0o600)
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("reserve: when the space cannot be had, NoSpace with what to do, and no temp file is left", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const file = Path.join(dir, "absent", "token.json")
      const error = yield* Effect.flip(TokenFile.reserve(file))
      assert.strictEqual(error.reason, "NoSpace")
      assert.strictEqual(error.path, file)
      assert.match(
        error.message,
        new RegExp(
          `^token file ${file}: cannot reserve the space to save a refresh next to it \\(.*ENOENT.*\\), so no ` +
            "refresh was asked of Strava and the grant is unchanged\\. Free some space on that filesystem\\.$"
        )
      )
      assert.deepStrictEqual(Fs.readdirSync(dir), [])
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("write: a failed write is an Io error saying so, leaves what was there, and removes its temp file", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      Fs.chmodSync(dir, 0o700)
      const file = Path.join(dir, "token.json")
      Fs.mkdirSync(file) // renaming a file over a directory fails
      Fs.writeFileSync(Path.join(file, "keep"), "")
      const error = yield* Effect.flip(TokenFile.write(file, tokens))
      assert.strictEqual(error.reason, "Io")
      assert.match(error.message, new RegExp(`^token file ${file}: cannot write it: `))
      assert.deepStrictEqual(Fs.readdirSync(dir), ["token.json"])
      assert.deepStrictEqual(Fs.readdirSync(file), ["keep"])
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("write and withLock refuse a directory that others can enter, with the chmod, as Permissions", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      Fs.chmodSync(dir, 0o755)
      const file = Path.join(dir, "token.json")
      for (const attempt of [TokenFile.write(file, tokens), TokenFile.withLock(file, Effect.void)]) {
        const error = yield* Effect.flip(attempt)
        assert.strictEqual(error._tag, "TokenFileError")
        assert.strictEqual(error.reason, "Permissions")
        assert.strictEqual(error.path, dir)
        assert.include(error.message, `chmod 700 ${dir}`)
        // the message names what the directory is for and the setting that moves it
        assert.include(error.message, `the token file's directory ${dir} has mode 0755`)
        assert.include(error.message, "--token-file or STRAVA_AUTH_TOKEN_FILE")
      }
      assert.deepStrictEqual(Fs.readdirSync(dir), [])
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("withLock creates the token file's directory 0700 and holds <file>.lock inside it", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const file = Path.join(dir, "state", "token.json")
      const inside = yield* TokenFile.withLock(file, Effect.sync(() => Fs.readdirSync(Path.dirname(file))))
      assert.deepStrictEqual(inside, ["token.json.lock"])
      assert.strictEqual(Fs.statSync(Path.dirname(file)).mode & 0o777, 0o700)
      assert.deepStrictEqual(Fs.readdirSync(Path.dirname(file)), [])
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("removeTemporaries removes only .<name>.<random>.tmp files next to the file; a missing directory is fine", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const file = Path.join(dir, "token.json")
      const keep = ["token.json", "token.json.lock", "token.json.tmp", ".token.json.bak", ".other.json.abc.tmp"]
      for (const name of [...keep, ".token.json.0123456789ab.tmp", ".token.json.x.tmp"]) {
        Fs.writeFileSync(Path.join(dir, name), "")
      }
      yield* TokenFile.removeTemporaries(file)
      assert.deepStrictEqual(Fs.readdirSync(dir).sort(), [...keep].sort())
      yield* TokenFile.removeTemporaries(Path.join(dir, "absent", "token.json"))
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("remove deletes the file, a missing one is fine, and one that cannot be deleted is an Io error", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const file = privateFile(dir, validJson())
      yield* TokenFile.remove(file)
      assert.isFalse(Fs.existsSync(file))
      yield* TokenFile.remove(file)
      const busy = Path.join(dir, "dir.json")
      Fs.mkdirSync(busy)
      const error = yield* Effect.flip(TokenFile.remove(busy))
      assert.strictEqual(error.reason, "Io")
      assert.match(error.message, new RegExp(`^token file ${busy}: cannot delete it: `))
      assert.isTrue(Fs.existsSync(busy))
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it("describeExpiry: whole seconds left, or how long ago it expired (at the second itself: expired)", () => {
    const at = tokens.expiresAt * 1000
    assert.strictEqual(
      TokenFile.describeExpiry(tokens, at - (5 * 3600 + 59 * 60 + 30) * 1000 - 400),
      "expires in 5h 59m 30s"
    )
    assert.strictEqual(TokenFile.describeExpiry(tokens, at - 1), "expires in 0")
    assert.strictEqual(TokenFile.describeExpiry(tokens, at), "expired 0 ago")
    assert.strictEqual(TokenFile.describeExpiry(tokens, at + 3 * 60_000 + 999), "expired 3m ago")
  })
})

describe("TokenFile, exactly: a path that cannot be looked at", () => {
  it.effect("read under something that is not a directory is an Io error saying it cannot stat it, not None", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const file = Path.join(dir, "token.json")
      Fs.writeFileSync(file, "", { mode: 0o600 })
      const under = Path.join(file, "token.json")
      const error = yield* Effect.flip(TokenFile.read(under))
      assert.strictEqual(error.reason, "Io")
      assert.match(error.message, new RegExp(`^token file ${under}: cannot stat it: `))
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})

describe("TokenFile, exactly: resources", () => {
  it.effect("reading the file again and again leaves no file descriptor open", () =>
    Effect.gen(function*() {
      const file = Path.join(tempDir(), "token.json")
      yield* TokenFile.write(file, tokens)
      const open = () => Fs.readdirSync("/proc/self/fd").length
      const before = open()
      for (let i = 0; i < 200; i++) yield* TokenFile.read(file)
      assert.isBelow(open() - before, 50)
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})
