import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"

import * as GrantStore from "../src/GrantStore.js"
import { TokenSet } from "../src/Token.js"

const set = (name: string, expiresAt = 1_900_000_000) =>
  new TokenSet({
    tokenType: "Bearer",
    accessToken: Redacted.make(`access-${name}`),
    refreshToken: Redacted.make(`refresh-${name}`),
    expiresAt,
    scopes: ["read"]
  })

const refreshTokenOf = (stored: Option.Option<TokenSet>) =>
  Option.match(stored, { onNone: () => undefined, onSome: (tokens) => Redacted.value(tokens.refreshToken) })

describe("GrantStore.makeMemory", () => {
  it.effect("get, put, remove and list work per key; a seed set alone is stored under the default key", () =>
    Effect.gen(function*() {
      const seeded = yield* GrantStore.makeMemory(set("seed"))
      assert.strictEqual(refreshTokenOf(yield* seeded.get(GrantStore.defaultKey)), "refresh-seed")
      assert.deepStrictEqual(yield* seeded.list, [GrantStore.defaultKey])

      const store = yield* GrantStore.makeMemory()
      assert.isTrue(Option.isNone(yield* store.get("a")))
      assert.deepStrictEqual(yield* store.list, [])
      yield* store.put("a", set("a1"))
      yield* store.put("b", set("b1"))
      assert.strictEqual(refreshTokenOf(yield* store.get("a")), "refresh-a1")
      assert.strictEqual(refreshTokenOf(yield* store.get("b")), "refresh-b1")
      assert.deepStrictEqual([...(yield* store.list)].sort(), ["a", "b"])
      yield* store.put("a", set("a2")) // without `replaces`: unconditional (a new login)
      assert.strictEqual(refreshTokenOf(yield* store.get("a")), "refresh-a2")
      yield* store.remove("a")
      assert.isTrue(Option.isNone(yield* store.get("a")))
      assert.deepStrictEqual(yield* store.list, ["b"])
      yield* store.remove("a") // missing is fine
      assert.strictEqual(refreshTokenOf(yield* store.get("b")), "refresh-b1")
    }))

  it.effect("put with `replaces` refuses a stale writer with StaleGrant, and the newer set survives", () =>
    Effect.gen(function*() {
      const store = yield* GrantStore.makeMemory(new Map([["k", set("old")]]))
      // Two writers read the same set; the first rotates it.
      yield* store.put("k", set("first"), { replaces: set("old") })
      assert.strictEqual(refreshTokenOf(yield* store.get("k")), "refresh-first")
      // The second still holds the old set: refused, and the first writer's set is kept.
      const error = yield* Effect.flip(store.put("k", set("second"), { replaces: set("old") }))
      assert.strictEqual(error._tag, "StaleGrant")
      assert.strictEqual(error.key, "k")
      assert.strictEqual(refreshTokenOf(yield* store.get("k")), "refresh-first")
      // Replacing a grant that is not stored at all is refused too.
      const missing = yield* Effect.flip(store.put("none", set("x"), { replaces: set("old") }))
      assert.strictEqual(missing._tag, "StaleGrant")
      assert.isTrue(Option.isNone(yield* store.get("none")))
      // The compare is on the refresh token: a set with the same refresh token may be replaced.
      yield* store.put("k", set("third"), { replaces: set("first", 1) })
      assert.strictEqual(refreshTokenOf(yield* store.get("k")), "refresh-third")
    }))

  it.effect("withLock is exclusive per key: a second fiber waits until the first leaves", () =>
    Effect.gen(function*() {
      const store = yield* GrantStore.makeMemory()
      const release = yield* Deferred.make<void>()
      const entered = yield* Deferred.make<void>()
      const order: Array<string> = []
      const first = yield* Effect.fork(store.withLock(
        "k",
        Effect.gen(function*() {
          order.push("first in")
          yield* Deferred.succeed(entered, undefined)
          yield* Deferred.await(release)
          order.push("first out")
        })
      ))
      yield* Deferred.await(entered)
      const second = yield* Effect.fork(store.withLock("k", Effect.sync(() => order.push("second in"))))
      yield* TestClock.adjust("1 minute") // gives the second fiber every chance to run
      assert.isTrue(Option.isNone(yield* Fiber.poll(second)))
      assert.deepStrictEqual(order, ["first in"])
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(first)
      yield* Fiber.join(second)
      assert.deepStrictEqual(order, ["first in", "first out", "second in"])
    }))

  it.effect("withLock: of 20 concurrent fibers on one key, never more than one is inside", () =>
    Effect.gen(function*() {
      const store = yield* GrantStore.makeMemory()
      let inside = 0
      let most = 0
      let done = 0
      yield* Effect.all(
        Array.from({ length: 20 }, () =>
          store.withLock(
            "k",
            Effect.gen(function*() {
              inside++
              most = Math.max(most, inside)
              yield* Effect.yieldNow()
              yield* Effect.sleep("1 second")
              inside--
              done++
            })
          )),
        { concurrency: "unbounded" }
      ).pipe(Effect.fork, Effect.tap(() => TestClock.adjust("30 seconds")), Effect.flatMap(Fiber.join))
      assert.strictEqual(done, 20)
      assert.strictEqual(most, 1)
    }))

  it.effect("withLock is independent across keys: another key's lock is free while one is held", () =>
    Effect.gen(function*() {
      const store = yield* GrantStore.makeMemory()
      const release = yield* Deferred.make<void>()
      const entered = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(
        store.withLock("a", Effect.zipRight(Deferred.succeed(entered, undefined), Deferred.await(release)))
      )
      yield* Deferred.await(entered)
      const other = yield* Effect.fork(store.withLock("b", Effect.succeed("b done")))
      yield* TestClock.adjust("1 second")
      const polled = yield* Fiber.poll(other)
      assert.isTrue(Option.isSome(polled), "the lock of b waited for the lock of a")
      assert.strictEqual(yield* Fiber.join(other), "b done")
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(holder)
    }))
})
