import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"

import * as Migrations from "../src/Migrations.js"
import * as SqlGrantStore from "../src/SqlGrantStore.js"
import * as TokenCipher from "../src/TokenCipher.js"
import { freshDatabase, pool, set } from "./fixtures.js"

const refreshOf = (stored: Option.Option<{ readonly refreshToken: Redacted.Redacted<string> }>) =>
  Option.match(stored, { onNone: () => undefined, onSome: (tokens) => Redacted.value(tokens.refreshToken) })

/** A store on its own pool: one per simulated replica. */
const storeOn = (url: Redacted.Redacted<string>, options: SqlGrantStore.Options = {}) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(pool(url))
    const store = yield* Effect.provide(Effect.zipRight(Migrations.run, SqlGrantStore.make(options)), context)
    const raw = <A, E>(f: (sql: SqlClient.SqlClient) => Effect.Effect<A, E>) =>
      Effect.provide(Effect.flatMap(SqlClient.SqlClient, f), context)
    return { store, raw }
  }).pipe(Effect.orDie)

const key1 = "1001"
const key2 = "1002"

describe("SqlGrantStore on a real PostgreSQL", () => {
  it.scoped("get, put, remove and list work per athlete, and the migrations run twice without harm", () =>
    Effect.gen(function*() {
      const url = yield* freshDatabase
      const { store } = yield* storeOn(url)
      const { store: again } = yield* storeOn(url) // a second replica runs the migrations again
      assert.isTrue(Option.isNone(yield* store.get(key1)))
      assert.deepStrictEqual(yield* store.list, [])
      yield* store.put(key1, set("a1", 1_900_000_000, 1001))
      yield* store.put(key2, set("b1"))
      const a = Option.getOrThrow(yield* again.get(key1))
      assert.strictEqual(Redacted.value(a.refreshToken), "refresh-a1")
      assert.strictEqual(Redacted.value(a.accessToken), "access-a1")
      assert.strictEqual(a.expiresAt, 1_900_000_000)
      assert.deepStrictEqual(a.scopes, ["read", "activity:read"])
      assert.strictEqual(a.athlete?.id, 1001)
      assert.deepStrictEqual(yield* store.list, [key1, key2])
      yield* store.put(key1, set("a2")) // unconditional (a new connect); the athlete summary is kept
      const a2 = Option.getOrThrow(yield* store.get(key1))
      assert.strictEqual(Redacted.value(a2.refreshToken), "refresh-a2")
      assert.strictEqual(a2.athlete?.id, 1001)
      assert.strictEqual(yield* store.count, 2)
      yield* store.remove(key1)
      yield* store.remove(key1) // missing is fine
      assert.isTrue(Option.isNone(yield* store.get(key1)))
      assert.deepStrictEqual(yield* store.list, [key2])
    }))

  it.scoped("a key that is not an athlete id is refused as Malformed, naming what keys are", () =>
    Effect.gen(function*() {
      const { store } = yield* storeOn(yield* freshDatabase)
      const error = yield* Effect.flip(store.get("default"))
      assert.strictEqual(error.reason, "Malformed")
      assert.include(error.message, "keyed by athlete id")
    }))

  it.scoped("put with `replaces` refuses a stale writer (another replica rotated first) and keeps the newer set", () =>
    Effect.gen(function*() {
      const url = yield* freshDatabase
      const { store: a } = yield* storeOn(url)
      const { store: b } = yield* storeOn(url)
      yield* a.put(key1, set("old"))
      yield* a.put(key1, set("first"), { replaces: set("old") })
      const error = yield* Effect.flip(b.put(key1, set("second"), { replaces: set("old") }))
      assert.strictEqual(error._tag, "StaleGrant")
      assert.strictEqual(refreshOf(yield* b.get(key1)), "refresh-first")
      const missing = yield* Effect.flip(b.put(key2, set("x"), { replaces: set("old") }))
      assert.strictEqual(missing._tag, "StaleGrant")
      assert.isTrue(Option.isNone(yield* b.get(key2)))
    }))

  it.scoped("withLock is exclusive across replicas: of 12 holders on 3 pools, never more than one is inside", () =>
    Effect.gen(function*() {
      const url = yield* freshDatabase
      const replicas = [yield* storeOn(url), yield* storeOn(url), yield* storeOn(url)]
      yield* replicas[0]!.store.put(key1, set("x"))
      let inside = 0
      let most = 0
      let entered = 0
      yield* Effect.forEach(
        Array.from({ length: 12 }, (_, i) => replicas[i % 3]!.store),
        (store) =>
          store.withLock(
            key1,
            Effect.gen(function*() {
              inside++
              entered++
              most = Math.max(most, inside)
              // Give the others every chance to get in: a round trip to the server while holding the lock.
              yield* store.get(key1)
              yield* Effect.yieldNow()
              inside--
            })
          ),
        { concurrency: "unbounded", discard: true }
      )
      assert.strictEqual(entered, 12)
      assert.strictEqual(most, 1)
    }))

  it.scoped("withLock on one athlete leaves another athlete's lock free", () =>
    Effect.gen(function*() {
      const url = yield* freshDatabase
      const { store: a } = yield* storeOn(url)
      const { store: b } = yield* storeOn(url)
      yield* a.put(key1, set("x"))
      yield* a.put(key2, set("y"))
      const holding = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(
        a.withLock(key1, Effect.zipRight(Deferred.succeed(holding, undefined), Deferred.await(release)))
      )
      yield* Deferred.await(holding)
      assert.strictEqual(yield* b.withLock(key2, Effect.succeed("free")), "free")
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(holder)
    }))

  it.scoped("a put under the lock is durable before withLock ends: another replica reads it at once", () =>
    Effect.gen(function*() {
      const url = yield* freshDatabase
      const { store: a } = yield* storeOn(url)
      const { store: b } = yield* storeOn(url)
      yield* a.put(key1, set("old"))
      const written = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(
        a.withLock(
          key1,
          Effect.gen(function*() {
            yield* a.put(key1, set("new"), { replaces: set("old") })
            yield* Deferred.succeed(written, undefined)
            yield* Deferred.await(release)
          })
        )
      )
      yield* Deferred.await(written)
      // Still inside a's withLock: b reads the committed row (a plain read does not wait for the lock).
      assert.strictEqual(refreshOf(yield* b.get(key1)), "refresh-new")
      // And the row is still locked: b's lock times out.
      const { store: impatient } = yield* storeOn(url, { lockTimeout: "200 millis" })
      const busy = yield* Effect.flip(impatient.withLock(key1, Effect.void))
      assert.strictEqual(busy._tag, "GrantStoreError")
      assert.strictEqual(busy._tag === "GrantStoreError" ? busy.reason : "", "Busy")
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(holder)
      assert.strictEqual(yield* impatient.withLock(key1, Effect.succeed("free")), "free")
    }))

  it.scoped("a holder interrupted inside withLock rolls back and frees the row for the other replicas", () =>
    Effect.gen(function*() {
      const url = yield* freshDatabase
      const { store: a } = yield* storeOn(url)
      const { store: b } = yield* storeOn(url, { lockTimeout: "5 seconds" })
      yield* a.put(key1, set("x"))
      const holding = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(
        a.withLock(key1, Effect.zipRight(Deferred.succeed(holding, undefined), Effect.never))
      )
      yield* Deferred.await(holding)
      yield* Fiber.interrupt(holder)
      assert.strictEqual(yield* b.withLock(key1, Effect.succeed("got it")), "got it")
      // The pool's connections are clean: a's next lock and write work.
      yield* a.withLock(key1, a.put(key1, set("y"), { replaces: set("x") }))
      assert.strictEqual(refreshOf(yield* b.get(key1)), "refresh-y")
    }))

  it.scoped("encrypted at rest: the row holds neither token, and the key id is stored beside them", () =>
    Effect.gen(function*() {
      const url = yield* freshDatabase
      const key = Redacted.make(`k1:${Buffer.alloc(32, 7).toString("base64")}`)
      const cipher = yield* TokenCipher.make(key)
      const { raw, store } = yield* storeOn(url, { cipher })
      yield* store.put(key1, set("secret"))
      const rows = yield* raw((sql) =>
        sql<{ access_token: string; refresh_token: string; key_id: string }>`SELECT * FROM strava_grants`
      ).pipe(Effect.orDie)
      const row = rows[0]!
      assert.strictEqual(row.key_id, "k1")
      assert.notInclude(row.access_token, "secret")
      assert.notInclude(row.refresh_token, "secret")
      // Two writes of one token give two ciphertexts (a random IV per write).
      yield* store.put(key1, set("secret"))
      const again = (yield* raw((sql) => sql<{ refresh_token: string }>`SELECT refresh_token FROM strava_grants`)
        .pipe(Effect.orDie))[0]!
      assert.notStrictEqual(again.refresh_token, row.refresh_token)
      assert.strictEqual(refreshOf(yield* store.get(key1)), "refresh-secret")
    }))

  it.scoped("encrypted: a ciphertext copied to another athlete's row does not decrypt (the athlete id is bound)", () =>
    Effect.gen(function*() {
      const url = yield* freshDatabase
      const cipher = yield* TokenCipher.make(Redacted.make(Buffer.alloc(32, 9).toString("base64")))
      const { raw, store } = yield* storeOn(url, { cipher })
      yield* store.put(key1, set("one"))
      yield* store.put(key2, set("two"))
      yield* raw((sql) =>
        sql`UPDATE strava_grants SET refresh_token = (SELECT refresh_token FROM strava_grants WHERE athlete_id = ${key1})
          WHERE athlete_id = ${key2}`
      ).pipe(Effect.orDie)
      const error = yield* Effect.flip(store.get(key2))
      assert.strictEqual(error.reason, "Malformed")
      assert.include(error.message, "does not decrypt")
      assert.notInclude(error.message, "refresh-")
      assert.strictEqual(refreshOf(yield* store.get(key1)), "refresh-one")
    }))

  it.scoped("key rotation: rows under the old key still read with the new key first, and reencrypt moves them", () =>
    Effect.gen(function*() {
      const url = yield* freshDatabase
      const oldKey = `old:${Buffer.alloc(32, 1).toString("base64")}`
      const newKey = `new:${Buffer.alloc(32, 2).toString("base64")}`
      const { store: before } = yield* storeOn(url, { cipher: yield* TokenCipher.make(Redacted.make(oldKey)) })
      yield* before.put(key1, set("one"))
      yield* before.put(key2, set("two"))
      const rotated = yield* TokenCipher.make(Redacted.make(`${newKey},${oldKey}`))
      const { raw, store: after } = yield* storeOn(url, { cipher: rotated })
      assert.strictEqual(refreshOf(yield* after.get(key1)), "refresh-one")
      assert.strictEqual(yield* after.reencrypt, 2)
      const ids = yield* raw((sql) => sql<{ key_id: string }>`SELECT key_id FROM strava_grants`).pipe(Effect.orDie)
      assert.deepStrictEqual(ids.map((r) => r.key_id), ["new", "new"])
      // Now the old key can go.
      const { store: newOnly } = yield* storeOn(url, { cipher: yield* TokenCipher.make(Redacted.make(newKey)) })
      assert.strictEqual(refreshOf(yield* newOnly.get(key2)), "refresh-two")
      // Without any key, an encrypted row is refused with what to do.
      const { store: none } = yield* storeOn(url)
      const error = yield* Effect.flip(none.get(key1))
      assert.include(error.message, "no STRAVA_AUTH_ENCRYPTION_KEY is set")
    }))

  it.effect("a bad key list is refused with what is wrong, never repeating the key", () =>
    Effect.gen(function*() {
      const short = yield* Effect.flip(TokenCipher.make(Redacted.make("c2hvcnQ=")))
      assert.include(short, "not 32 bytes of base64")
      const badId = yield* Effect.flip(TokenCipher.make(Redacted.make(`a b:${Buffer.alloc(32).toString("base64")}`)))
      assert.include(badId, "an id is 1 to 32 letters")
      assert.notInclude(badId, Buffer.alloc(32).toString("base64"))
      const twice = `x:${Buffer.alloc(32, 1).toString("base64")},x:${Buffer.alloc(32, 2).toString("base64")}`
      assert.include(yield* Effect.flip(TokenCipher.make(Redacted.make(twice))), `the id "x" is given twice`)
    }))

  it.scoped("a remove under the lock is durable before withLock ends: another replica finds the grant gone", () =>
    Effect.gen(function*() {
      const url = yield* freshDatabase
      const { store: a } = yield* storeOn(url)
      const { store: b } = yield* storeOn(url)
      yield* a.put(key1, set("x"))
      const removed = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(
        a.withLock(
          key1,
          Effect.gen(function*() {
            yield* a.remove(key1)
            yield* Deferred.succeed(removed, undefined)
            yield* Deferred.await(release)
          })
        )
      )
      yield* Deferred.await(removed)
      assert.isTrue(Option.isNone(yield* b.get(key1)))
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(holder)
      assert.isTrue(Option.isNone(yield* b.get(key1)))
    }))

  it.scoped("a database that is gone fails as a transient Io error that names the SQLSTATE and no value", () =>
    Effect.gen(function*() {
      const url = yield* freshDatabase
      const { store } = yield* storeOn(url)
      yield* store.put(key1, set("x"))
      // The database disappears under the pool (its connections are closed by the server).
      const name = new URL(Redacted.value(url)).pathname.slice(1)
      const { raw: adminRaw } = yield* storeOn(yield* freshDatabase) // another database on the same server
      yield* adminRaw((sql) => sql.unsafe(`DROP DATABASE ${name} WITH (FORCE)`)).pipe(Effect.orDie)
      const error = yield* Effect.flip(store.get(key1))
      assert.strictEqual(error._tag, "GrantStoreError")
      assert.strictEqual(error.reason, "Io")
      assert.isTrue(error.transient)
      assert.match(error.message, /SQLSTATE \w+|no connection/)
      assert.include(error.message, "it is tried again")
      assert.notInclude(error.message, new URL(Redacted.value(url)).password)
      assert.notInclude(error.message, "refresh-x")
    }))
})
