/**
 * Where grants live between refreshes: token sets under a key, within one app (one client id).
 *
 * The key is the athlete's id in a web app with many athletes, the account name in the daemon. A store has
 * five operations, and the refresh engine (`RefreshEngine`) relies on each promise:
 *
 * - `get(key)`: the stored set, or `None`.
 * - `put(key, tokens, { replaces })`: durable before it returns. With `replaces` it is a compare-and-set on
 *   the refresh token: the write is refused with `StaleGrant` when the stored set is not the one the writer
 *   started from, so a writer holding an old set can never overwrite a newer rotation. Without `replaces` it
 *   writes unconditionally (a login, a restore).
 * - `remove(key)`: the grant is gone (revoked, deauthorized). Missing is fine.
 * - `list`: the keys that hold a grant.
 * - `withLock(key, effect)`: `effect` runs exclusive for that grant across every process sharing the store
 *   (in memory: this process; the daemon's token files: every process on the machine; SQL: every replica).
 *
 * The in-memory store is here; the daemon brings the token file and a directory of token files.
 *
 * @since 0.2.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"

import type { TokenSet } from "./Token.js"

/**
 * A store could not read, write or lock.
 *
 * `Io` and `Busy` (a lock held too long) are transient: the engine retries them with the same grant.
 * `NoSpace` (no room to save an answer, so Strava was not asked), `Malformed` and `Permissions` need a person:
 * the stored grant is left as it is (the engine still tries again after its backoff).
 *
 * @since 0.2.0
 * @category errors
 */
export class GrantStoreError extends Schema.TaggedError<GrantStoreError>()("GrantStoreError", {
  key: Schema.String,
  reason: Schema.Literal("Io", "Busy", "NoSpace", "Malformed", "Permissions"),
  /** Where, e.g. the token file's path or a table. */
  location: Schema.String,
  /** What went wrong and what to do; never a token. */
  detail: Schema.String
}) {
  /** @since 0.2.0 */
  get transient(): boolean {
    return this.reason === "Io" || this.reason === "Busy"
  }
  /** @since 0.2.0 */
  override get message(): string {
    return `grant store ${this.location}: ${this.detail}`
  }
}

/**
 * A compare-and-set write found another set than the one it replaces: someone else wrote a newer grant
 * (a rotation by another process, a new login). The write did not happen.
 *
 * @since 0.2.0
 * @category errors
 */
export class StaleGrant extends Schema.TaggedError<StaleGrant>()("StaleGrant", {
  key: Schema.String
}) {
  /** @since 0.2.0 */
  get transient(): boolean {
    return true
  }
  /** @since 0.2.0 */
  override get message(): string {
    return `the stored grant "${this.key}" changed since it was read; the newer one was kept.`
  }
}

/**
 * @since 0.2.0
 * @category models
 */
export interface PutOptions {
  /** Compare-and-set: write only while the stored set still holds this set's refresh token. */
  readonly replaces?: TokenSet | undefined
}

/**
 * @since 0.2.0
 * @category models
 */
export interface GrantStoreShape {
  readonly get: (key: string) => Effect.Effect<Option.Option<TokenSet>, GrantStoreError>
  readonly put: (
    key: string,
    tokens: TokenSet,
    options?: PutOptions
  ) => Effect.Effect<void, GrantStoreError | StaleGrant>
  readonly remove: (key: string) => Effect.Effect<void, GrantStoreError>
  readonly list: Effect.Effect<ReadonlyArray<string>, GrantStoreError>
  readonly withLock: <A, E, R>(
    key: string,
    effect: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | GrantStoreError, R>
}

/**
 * @since 0.2.0
 * @category tags
 */
export class GrantStore extends Context.Tag("@strava-auth/core/GrantStore")<GrantStore, GrantStoreShape>() {}

/**
 * The key of an app's single grant (the daemon's default account; an app that owns one grant).
 *
 * @since 0.2.0
 * @category constants
 */
export const defaultKey = "default"

/**
 * Whether a compare-and-set write of a set replacing `replaces` may go over `stored`.
 *
 * @since 0.2.0
 * @category predicates
 */
export const mayReplace = (stored: Option.Option<TokenSet>, options: PutOptions | undefined): boolean =>
  options?.replaces === undefined ||
  (Option.isSome(stored) && stored.value.sameRefreshToken(options.replaces))

/**
 * An in-memory store, optionally seeded (a set alone is stored under `defaultKey`). Its lock is exclusive
 * within this process.
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeMemory = (
  initial?: TokenSet | ReadonlyMap<string, TokenSet>
): Effect.Effect<GrantStoreShape> =>
  Effect.gen(function*() {
    const seed: ReadonlyMap<string, TokenSet> = initial === undefined
      ? new Map()
      : initial instanceof Map
      ? initial
      : new Map([[defaultKey, initial as TokenSet]])
    const grants = yield* Ref.make<ReadonlyMap<string, TokenSet>>(new Map(seed))
    const locks = new Map<string, Effect.Semaphore>()
    const lockOf = (key: string) => {
      let lock = locks.get(key)
      if (lock === undefined) {
        lock = Effect.unsafeMakeSemaphore(1)
        locks.set(key, lock)
      }
      return lock
    }
    return GrantStore.of({
      get: (key) => Effect.map(Ref.get(grants), (map) => Option.fromNullable(map.get(key))),
      put: (key, tokens, options) =>
        Effect.flatten(
          Ref.modify(grants, (map): readonly [Effect.Effect<void, StaleGrant>, ReadonlyMap<string, TokenSet>] =>
            mayReplace(Option.fromNullable(map.get(key)), options)
              ? [Effect.void, new Map(map).set(key, tokens)]
              : [Effect.fail(new StaleGrant({ key })), map])
        ),
      remove: (key) =>
        Ref.update(grants, (map) => {
          const next = new Map(map)
          next.delete(key)
          return next
        }),
      list: Effect.map(Ref.get(grants), (map) => Array.from(map.keys())),
      withLock: (key, effect) => lockOf(key).withPermits(1)(effect)
    })
  })

/**
 * @since 0.2.0
 * @category layers
 */
export const layerMemory = (initial?: TokenSet | ReadonlyMap<string, TokenSet>): Layer.Layer<GrantStore> =>
  Layer.effect(GrantStore, makeMemory(initial))
