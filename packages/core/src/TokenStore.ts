/**
 * Where a token set lives between refreshes. The in-memory store is here; the daemon brings the file store.
 *
 * A store must make `set` durable before it returns: the token source hands out a refreshed access token
 * only after `set` has succeeded, so a rotated refresh token is never held only in memory.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"

import type { TokenSet } from "./Token.js"

/**
 * A store could not read or write.
 *
 * @since 0.1.0
 * @category errors
 */
export class TokenStoreError extends Schema.TaggedError<TokenStoreError>()("TokenStoreError", {
  operation: Schema.Literal("get", "set"),
  /** Where, e.g. the token file's path. */
  location: Schema.String,
  /** What went wrong and what to do; never a token. */
  detail: Schema.String
}) {
  /** @since 0.1.0 */
  get transient(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return `Cannot ${this.operation === "get" ? "read" : "write"} the token store at ${this.location}: ${this.detail}`
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface TokenStoreShape {
  /** The stored set, or `None` when there is none (never logged in, or revoked). */
  readonly get: Effect.Effect<Option.Option<TokenSet>, TokenStoreError>
  /** Replaces the stored set durably. */
  readonly set: (tokens: TokenSet) => Effect.Effect<void, TokenStoreError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class TokenStore extends Context.Tag("@strava-auth/core/TokenStore")<TokenStore, TokenStoreShape>() {}

/**
 * An in-memory store, optionally seeded.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory = (initial?: TokenSet): Effect.Effect<TokenStoreShape> =>
  Effect.map(Ref.make(Option.fromNullable(initial)), (ref) => ({
    get: Ref.get(ref),
    set: (tokens) => Ref.set(ref, Option.some(tokens))
  }))

/**
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (initial?: TokenSet): Layer.Layer<TokenStore> =>
  Layer.effect(TokenStore, makeMemory(initial))
