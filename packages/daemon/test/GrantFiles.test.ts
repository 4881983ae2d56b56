// Core's GrantStore over token files: one file (the daemon's default account) and a directory of files (one
// per account), with the compare-and-set write and the reservation the engine relies on.
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"

import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { assert, describe, it, onTestFinished } from "@effect/vitest"
import { GrantStore, Token } from "@strava-auth/core"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"

import * as TokenFile from "../src/TokenFile.js"
import { tempDir } from "./harness.js"

const set = (n: number) =>
  new Token.TokenSet({
    tokenType: "Bearer",
    accessToken: Redacted.make(`access-${n}-aaaaaaaaaaaaaaaa`),
    refreshToken: Redacted.make(`refresh-${n}-rrrrrrrrrrrrrrr`),
    expiresAt: 1_800_000_000 + n,
    scopes: ["read"],
    athlete: { id: 1000 + n }
  })

describe("the token file as a GrantStore", () => {
  it.effect("one file holds the default key; list shows it once it exists; remove deletes the file", () =>
    Effect.gen(function*() {
      const file = Path.join(tempDir("grants-"), "state", "token.json")
      const store = yield* TokenFile.makeFileStore(file)
      assert.deepStrictEqual(yield* store.list, [])
      assert.isTrue(Option.isNone(yield* store.get(GrantStore.defaultKey)))
      yield* store.put(GrantStore.defaultKey, set(1))
      assert.deepStrictEqual(yield* store.list, ["default"]) // the documented name of the default account
      assert.isTrue(Option.getOrThrow(yield* store.get(GrantStore.defaultKey)).sameRefreshToken(set(1)))
      yield* store.remove(GrantStore.defaultKey)
      assert.isFalse(Fs.existsSync(file))
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("put with replaces refuses a writer holding an old set: the newer rotation stays in the file", () =>
    Effect.gen(function*() {
      const file = Path.join(tempDir("grants-"), "token.json")
      const store = yield* TokenFile.makeFileStore(file)
      yield* store.put(GrantStore.defaultKey, set(1))
      yield* store.put(GrantStore.defaultKey, set(2), { replaces: set(1) }) // a rotation
      const stale = yield* Effect.flip(store.put(GrantStore.defaultKey, set(3), { replaces: set(1) }))
      assert.strictEqual(stale._tag, "StaleGrant")
      assert.isTrue(Option.getOrThrow(yield* TokenFile.read(file)).sameRefreshToken(set(2)))
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("withLock holds the file's lock and reserves the space for the write, used by put and then gone", () =>
    Effect.gen(function*() {
      const dir = tempDir("grants-")
      const file = Path.join(dir, "token.json")
      const store = yield* TokenFile.makeFileStore(file)
      yield* store.put(GrantStore.defaultKey, set(1))
      yield* store.withLock(
        GrantStore.defaultKey,
        Effect.gen(function*() {
          const names = Fs.readdirSync(dir)
          assert.include(names, "token.json.lock")
          const reserved = names.filter((n) => n.startsWith(".token.json.") && n.endsWith(".tmp"))
          assert.strictEqual(reserved.length, 1)
          assert.strictEqual(Fs.statSync(Path.join(dir, reserved[0]!)).size, 4096)
          yield* store.put(GrantStore.defaultKey, set(2), { replaces: set(1) })
        })
      )
      assert.deepStrictEqual(Fs.readdirSync(dir), ["token.json"]) // no lock, no temp file left
      const json = JSON.parse(Fs.readFileSync(file, "utf8"))
      assert.strictEqual(json.refresh_token, "refresh-2-rrrrrrrrrrrrrrr")
      assert.strictEqual(Fs.statSync(file).mode & 0o777, 0o600)
      // a lock held without a write leaves nothing either
      yield* store.withLock(GrantStore.defaultKey, Effect.void)
      assert.deepStrictEqual(Fs.readdirSync(dir), ["token.json"])
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})

describe("a directory of token files as a GrantStore", () => {
  it.effect("one <key>.json per key; list gives the keys in order; keys are independent", () =>
    Effect.gen(function*() {
      const dir = Path.join(tempDir("grants-"), "accounts")
      const store = yield* TokenFile.makeDirectoryStore(dir)
      assert.deepStrictEqual(yield* store.list, [])
      yield* store.put("work", set(1))
      yield* store.put("default", set(2))
      Fs.writeFileSync(Path.join(dir, "notes.txt"), "not a grant")
      assert.deepStrictEqual(yield* store.list, ["default", "work"])
      assert.isTrue(Option.getOrThrow(yield* store.get("work")).sameRefreshToken(set(1)))
      assert.isTrue(Option.getOrThrow(yield* store.get("default")).sameRefreshToken(set(2)))
      assert.isTrue(Fs.existsSync(Path.join(dir, "work.json")))
      yield* store.remove("work")
      assert.deepStrictEqual(yield* store.list, ["default"])
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("a key that is not a plain name (a path, dots) is refused, never joined into a path", () =>
    Effect.gen(function*() {
      const dir = Path.join(tempDir("grants-"), "accounts")
      const store = yield* TokenFile.makeDirectoryStore(dir)
      for (const key of ["../escape", "a/b", "", ".hidden"]) {
        const error = yield* Effect.flip(store.put(key, set(1)))
        assert.strictEqual(error._tag, "GrantStoreError", `key ${JSON.stringify(key)} was accepted`)
        assert.include(error.message, "is not an account name")
      }
      assert.isFalse(Fs.existsSync(Path.join(dir, "..", "escape.json")))
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})

describe("the token file stores, exactly", () => {
  it.effect("two writes under one lock: the first uses the reservation, the second a temp file of its own", () =>
    Effect.gen(function*() {
      const dir = tempDir("grants-")
      const file = Path.join(dir, "token.json")
      const store = yield* TokenFile.makeFileStore(file)
      yield* store.put(GrantStore.defaultKey, set(1))
      yield* store.withLock(
        GrantStore.defaultKey,
        Effect.gen(function*() {
          yield* store.put(GrantStore.defaultKey, set(2), { replaces: set(1) })
          yield* store.put(GrantStore.defaultKey, set(3), { replaces: set(2) })
        })
      )
      assert.deepStrictEqual(Fs.readdirSync(dir), ["token.json"])
      assert.isTrue(Option.getOrThrow(yield* store.get(GrantStore.defaultKey)).sameRefreshToken(set(3)))
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("a token file error reaches the engine as a GrantStoreError with the key, the reason, the file and the detail", () =>
    Effect.gen(function*() {
      const dir = tempDir("grants-")
      const file = Path.join(dir, "token.json")
      const store = yield* TokenFile.makeFileStore(file)
      yield* store.put(GrantStore.defaultKey, set(1))
      Fs.chmodSync(file, 0o644)
      const error = yield* Effect.flip(store.get(GrantStore.defaultKey))
      assert.strictEqual(error._tag, "GrantStoreError")
      if (error._tag === "GrantStoreError") {
        assert.strictEqual(error.key, GrantStore.defaultKey)
        assert.strictEqual(error.reason, "Permissions")
        assert.strictEqual(error.location, file)
        assert.strictEqual(
          error.detail,
          `it is readable by group or others (mode 0644), so the tokens in it may have leaked. Run: chmod 600 ${file} ` +
            "(and consider strava-auth revoke, then login)."
        )
      }
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("account names: letters, digits, - and _, 1 to 64 of them; anything else is refused and never listed", () =>
    Effect.gen(function*() {
      const dir = Path.join(tempDir("grants-"), "accounts")
      const store = yield* TokenFile.makeDirectoryStore(dir)
      const accepted = ["a", "Z", "0", "_", "-", "Work_Account-2", "k".repeat(64)]
      for (const key of accepted) yield* store.put(key, set(1))
      for (const key of ["", "k".repeat(65), "ab!", "!ab", "a b", "a.b", "é"]) {
        const error = yield* Effect.flip(store.put(key, set(1)))
        assert.strictEqual(error._tag, "GrantStoreError", JSON.stringify(key))
        if (error._tag === "GrantStoreError") {
          assert.strictEqual(error.reason, "Malformed")
          assert.strictEqual(error.key, key)
          assert.strictEqual(error.location, dir)
          assert.strictEqual(
            error.detail,
            `${JSON.stringify(key)} is not an account name: use letters, digits, - and _ (at most 64).`
          )
        }
      }
      // files whose names are not account names (put there by hand) are not listed
      for (const name of ["ab!.json", "a.b.json", `${"k".repeat(65)}.json`, ".json", "x.json.bak", "y.JSON"]) {
        Fs.writeFileSync(Path.join(dir, name), "{}", { mode: 0o600 })
      }
      assert.deepStrictEqual(yield* store.list, [...accepted].sort())
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("a directory store whose directory cannot be listed fails with an Io error for every key", () =>
    Effect.gen(function*() {
      const dir = Path.join(tempDir("grants-"), "accounts")
      Fs.writeFileSync(dir, "not a directory")
      const store = yield* TokenFile.makeDirectoryStore(dir)
      const error = yield* Effect.flip(store.list)
      assert.strictEqual(error._tag, "GrantStoreError")
      assert.strictEqual(error.key, "*")
      assert.strictEqual(error.reason, "Io")
      assert.strictEqual(error.location, dir)
      assert.match(error.detail, /^cannot list the directory: /)
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})

describe("the token file stores, exactly: writes and layers", () => {
  it.effect("a login (a write that replaces nothing) writes over a malformed file, as its message says", () =>
    Effect.gen(function*() {
      const file = Path.join(tempDir("grants-"), "token.json")
      Fs.writeFileSync(file, "{ not a token file", { mode: 0o600 })
      const store = yield* TokenFile.makeFileStore(file)
      assert.strictEqual((yield* Effect.flip(store.get(GrantStore.defaultKey)))._tag, "GrantStoreError")
      yield* store.put(GrantStore.defaultKey, set(1))
      assert.isTrue(Option.getOrThrow(yield* store.get(GrantStore.defaultKey)).sameRefreshToken(set(1)))
      // a compare-and-set over it is refused: there is no set to compare with
      const refused = yield* Effect.flip(store.put(GrantStore.defaultKey, set(2), { replaces: set(9) }))
      assert.strictEqual(refused._tag, "StaleGrant")
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("after a lock held without a write, a later write takes a temp file of its own", () =>
    Effect.gen(function*() {
      const dir = tempDir("grants-")
      const file = Path.join(dir, "token.json")
      const store = yield* TokenFile.makeFileStore(file)
      yield* store.put(GrantStore.defaultKey, set(1))
      yield* store.withLock(GrantStore.defaultKey, Effect.void)
      yield* store.put(GrantStore.defaultKey, set(2), { replaces: set(1) })
      assert.isTrue(Option.getOrThrow(yield* store.get(GrantStore.defaultKey)).sameRefreshToken(set(2)))
      assert.deepStrictEqual(Fs.readdirSync(dir), ["token.json"])
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("layerStore and layerDirectoryStore provide the GrantStore over a file and over a directory", () =>
    Effect.gen(function*() {
      const dir = tempDir("grants-")
      const file = Path.join(dir, "token.json")
      const accounts = Path.join(dir, "accounts")
      const putGet = (key: string) =>
        Effect.flatMap(
          GrantStore.GrantStore,
          (store) => Effect.zipRight(store.put(key, set(1)), Effect.map(store.get(key), Option.getOrThrow))
        )
      const one = yield* putGet(GrantStore.defaultKey).pipe(Effect.provide(TokenFile.layerStore(file)))
      assert.isTrue(one.sameRefreshToken(set(1)))
      assert.isTrue(Fs.existsSync(file))
      const many = yield* putGet("work").pipe(Effect.provide(TokenFile.layerDirectoryStore(accounts)))
      assert.isTrue(many.sameRefreshToken(set(1)))
      assert.isTrue(Fs.existsSync(Path.join(accounts, "work.json")))
    }).pipe(Effect.provide(Layer.mergeAll(NodeFileSystem.layer))))

  // Mounting a tmpfs needs root; CI runs as root, so there the test always runs.
  const skipNoRoot = process.getuid?.() !== 0 && process.env["CI"] !== "true"

  /** A tiny tmpfs at a new directory, unmounted when the test ends. */
  const tinyFilesystem = (prefix: string) => {
    const dir = Path.join(tempDir(prefix), "tiny")
    Fs.mkdirSync(dir, { mode: 0o700 })
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=32k,mode=0700", "tmpfs", dir])
    onTestFinished(() => void execFileSync("umount", ["-l", dir]))
    return dir
  }
  /** Fills the filesystem of `dir` to the byte, then frees `free` bytes. */
  const fill = (dir: string, free = 0) => {
    const filler = Fs.openSync(Path.join(dir, "filler"), "a")
    try {
      for (;;) Fs.writeSync(filler, Buffer.alloc(1024))
    } catch {
      for (;;) {
        try {
          Fs.writeSync(filler, Buffer.alloc(1))
        } catch {
          break
        }
      }
    } finally {
      Fs.ftruncateSync(filler, Fs.fstatSync(filler).size - free)
      Fs.closeSync(filler)
    }
  }

  it.effect.skipIf(skipNoRoot)(
    `the space reserved under the lock saves the answer on a disk that filled meanwhile${
      skipNoRoot ? " [skipped: needs root]" : ""
    }`,
    () =>
      Effect.gen(function*() {
        const dir = tinyFilesystem("grants-")
        const file = Path.join(dir, "token.json")
        const store = yield* TokenFile.makeFileStore(file)
        yield* store.put(GrantStore.defaultKey, set(1))
        yield* store.withLock(
          GrantStore.defaultKey,
          Effect.gen(function*() {
            fill(dir)
            yield* store.put(GrantStore.defaultKey, set(2), { replaces: set(1) })
          })
        )
        assert.isTrue(Option.getOrThrow(yield* store.get(GrantStore.defaultKey)).sameRefreshToken(set(2)))
        assert.deepStrictEqual(Fs.readdirSync(dir).sort(), ["filler", "token.json"])
        // room for the lock but not for a reservation: the lock is refused (NoSpace), and no temp file is left
        fill(dir, 4096)
        const refused = yield* Effect.flip(store.withLock(GrantStore.defaultKey, Effect.void))
        assert.strictEqual(refused._tag, "GrantStoreError")
        assert.strictEqual(refused._tag === "GrantStoreError" && refused.reason, "NoSpace")
        assert.deepStrictEqual(Fs.readdirSync(dir).sort(), ["filler", "token.json"])
      }).pipe(Effect.provide(NodeFileSystem.layer))
  )
})
