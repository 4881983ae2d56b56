/**
 * Grants on SQL (PostgreSQL 15 or later through `@effect/sql`): one row per athlete in `strava_grants`, the
 * `GrantStore` that the one refresh engine (`@strava-auth/core/RefreshEngine`) runs over in a web app with
 * many athletes on many replicas.
 *
 * - `withLock(athleteId, effect)` holds the athlete's row lock (`SELECT ... FOR UPDATE` in a transaction on a
 *   connection of its own) for the whole refresh, so two replicas never both refresh one grant: the second
 *   waits, then re-reads the row and finds it refreshed. A replica that dies holding it loses its connection,
 *   and the server releases the lock.
 * - `put` is durable when it returns: under the lock it writes, commits the lock's transaction and takes the
 *   row lock again for what is left of `withLock`. With `replaces` it is a compare-and-set on the refresh
 *   token (checked under the row's version), so a writer holding an old set can never overwrite a newer
 *   rotation.
 * - Tokens are stored as they are or encrypted (`TokenCipher`), with the key's id beside them.
 *
 * Its code names only `SqlClient` (the layer that builds the client names the driver): `layerPg` in
 * `Database`. The table comes from the migrations here (`migrate`), run under an advisory lock so that
 * replicas starting together do not race.
 *
 * @since 0.3.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlConnection from "@effect/sql/SqlConnection"
import type { SqlError } from "@effect/sql/SqlError"
import type { GrantStoreShape } from "@strava-auth/core/GrantStore"
import { GrantStore, GrantStoreError, mayReplace, StaleGrant } from "@strava-auth/core/GrantStore"
import { SummaryAthlete, TokenSet } from "@strava-auth/core/Token"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

import * as Migrations from "./Migrations.js"
import * as TokenCipher from "./TokenCipher.js"

/**
 * The table's name (for messages and the operations note).
 *
 * @since 0.3.0
 * @category constants
 */
export const table = "strava_grants"

/**
 * @since 0.3.0
 * @category models
 */
export interface Options {
  /** Tokens at rest. Default: stored as they are. */
  readonly cipher?: TokenCipher.TokenCipher | undefined
  /** How long `withLock` waits for another replica's refresh before failing `Busy`. Default 30 seconds. */
  readonly lockTimeout?: Duration.DurationInput | undefined
}

/**
 * One grant as the app sees it in a list (no token).
 *
 * @since 0.3.0
 * @category models
 */
export interface GrantSummary {
  readonly athleteId: string
  readonly athlete: SummaryAthlete | undefined
  readonly scopes: ReadonlyArray<string>
  readonly expiresAt: number
  readonly updatedAt: Date
}

/**
 * The SQL store: the `GrantStore` operations, plus what a web app with many athletes needs beside them.
 *
 * @since 0.3.0
 * @category models
 */
export interface SqlGrantStore extends GrantStoreShape {
  /** Connected athletes, newest first, without tokens. */
  readonly summaries: (limit: number) => Effect.Effect<ReadonlyArray<GrantSummary>, GrantStoreError>
  /** How many athletes are connected. */
  readonly count: Effect.Effect<number, GrantStoreError>
  /** Rewrites every row under the cipher's current key (after a key rotation). Returns the rows rewritten. */
  readonly reencrypt: Effect.Effect<number, GrantStoreError>
}

const Row = Schema.Struct({
  athlete_id: Schema.String,
  token_type: Schema.String,
  access_token: Schema.String,
  refresh_token: Schema.String,
  key_id: Schema.NullOr(Schema.String),
  expires_at: Schema.NumberFromString,
  scopes: Schema.Array(Schema.String),
  athlete: Schema.NullOr(Schema.Unknown),
  version: Schema.String
})
type Row = typeof Row.Type

const decodeRow = Schema.decodeUnknown(Row)
const decodeTokens = Schema.decodeUnknown(TokenSet)

/**
 * Whether `key` is a Strava athlete id as this store keys grants (digits, no leading zero; a bigint).
 *
 * @since 0.3.0
 * @category predicates
 */
export const isAthleteId = (key: string): boolean => /^[1-9][0-9]{0,18}$/.test(key)

const sqlState = (error: SqlError): string | undefined => {
  const cause = error.cause as { readonly code?: unknown } | undefined
  return typeof cause?.code === "string" ? cause.code : undefined
}

/**
 * A database error as the engine classifies it, with a message that names the SQLSTATE and never a value.
 *
 * @since 0.3.0
 * @category errors
 */
export const storeError = (key: string, doing: string) => (error: SqlError): GrantStoreError => {
  const code = sqlState(error)
  const reason = code === "55P03" || code === "57014"
    ? "Busy" as const
    : code === "53100"
    ? "NoSpace" as const
    : code === "42501"
    ? "Permissions" as const
    : "Io" as const
  const advice = reason === "Busy"
    ? "another replica held this grant's lock too long; it is tried again."
    : reason === "NoSpace"
    ? "the database server is out of disk space; free some, nothing was written."
    : reason === "Permissions"
    ? "the database user may not do this; grant it SELECT, INSERT, UPDATE, DELETE on the table."
    : code === "42P01"
    ? "the table is missing: run the migrations (SqlGrantStore.migrate) first."
    : "the database did not answer as expected; it is tried again. Check that it runs and is reachable."
  return new GrantStoreError({
    key,
    reason,
    location: table,
    detail: `${doing} failed (${code === undefined ? "no connection" : `SQLSTATE ${code}`}): ${advice}`
  })
}

const malformed = (key: string, detail: string) =>
  new GrantStoreError({ key, reason: "Malformed", location: table, detail })

interface Held {
  readonly connection: SqlConnection.Connection
  /** Whether the lock's transaction is open (false for the instant between a write's commit and the re-lock). */
  open: boolean
}

/** What the store's parts share: the client, the cipher, the locks this fiber holds, the lock timeout. */
interface Ctx {
  readonly sql: SqlClient.SqlClient
  readonly cipher: TokenCipher.TokenCipher
  /**
   * The connections this fiber holds a grant's lock on, by key: the store's own statements for that grant run
   * there (elsewhere they would wait for the lock this fiber holds).
   */
  readonly held: FiberRef.FiberRef<ReadonlyMap<string, Held>>
  readonly lockTimeoutMillis: number
}

const on = <A, E, R>(connection: SqlConnection.Connection, effect: Effect.Effect<A, E, R>) =>
  Effect.provideService(effect, SqlClient.TransactionConnection, [connection, 1] as const)
const forKey = (ctx: Ctx, key: string) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(FiberRef.get(ctx.held), (map) => {
    const lock = map.get(key)
    return lock === undefined ? effect : on(lock.connection, effect)
  })

const athleteId = (key: string): Effect.Effect<string, GrantStoreError> =>
  isAthleteId(key)
    ? Effect.succeed(key)
    : Effect.fail(malformed(key, `grants here are keyed by athlete id (digits), not "${key.slice(0, 40)}".`))

const select = (ctx: Ctx, id: string) =>
  ctx.sql`SELECT athlete_id::text AS athlete_id, token_type, access_token, refresh_token, key_id,
    floor(extract(epoch from expires_at))::bigint::text AS expires_at, scopes, athlete, version::text AS version
    FROM strava_grants WHERE athlete_id = ${id}`

const toTokens = (ctx: Ctx, key: string, row: Row): Effect.Effect<TokenSet, GrantStoreError> =>
  Effect.gen(function*() {
    const access = yield* ctx.cipher.decrypt(row.key_id, row.access_token, `${key}:access_token`)
    const refresh = yield* ctx.cipher.decrypt(row.key_id, row.refresh_token, `${key}:refresh_token`)
    return yield* decodeTokens({
      tokenType: row.token_type,
      accessToken: access,
      refreshToken: refresh,
      expiresAt: row.expires_at,
      scopes: row.scopes,
      ...(row.athlete === null ? {} : { athlete: row.athlete })
    })
  }).pipe(
    Effect.catchTags({
      CipherError: (error) => Effect.fail(malformed(key, error.message)),
      ParseError: () => Effect.fail(malformed(key, "the stored row does not hold a valid grant; connect again."))
    })
  )

const read = (ctx: Ctx, key: string, id: string) =>
  Effect.gen(function*() {
    const rows = yield* select(ctx, id).pipe(Effect.mapError(storeError(key, "reading the grant")))
    if (rows.length === 0) return Option.none<readonly [TokenSet, string]>()
    const row = yield* decodeRow(rows[0]).pipe(
      Effect.mapError(() => malformed(key, "the stored row has an unexpected shape; check the migrations."))
    )
    return Option.some([yield* toTokens(ctx, key, row), row.version] as const)
  })

const sealed = (ctx: Ctx, key: string, tokens: TokenSet) =>
  Effect.all({
    access: ctx.cipher.encrypt(Redacted.value(tokens.accessToken), `${key}:access_token`),
    refresh: ctx.cipher.encrypt(Redacted.value(tokens.refreshToken), `${key}:refresh_token`)
  })

// Takes (or takes again) the row lock in an open transaction on `connection`.
const lockRow = (ctx: Ctx, key: string, id: string, lock: Held) =>
  on(
    lock.connection,
    Effect.gen(function*() {
      // Open before BEGIN is sent: an interruption while it is in flight still rolls back (a ROLLBACK
      // outside a transaction is only a warning), so no connection goes back to the pool inside one.
      lock.open = true
      yield* ctx.sql.unsafe("BEGIN")
      yield* ctx.sql.unsafe(`SET LOCAL lock_timeout = ${ctx.lockTimeoutMillis}`)
      yield* ctx.sql`SELECT 1 FROM strava_grants WHERE athlete_id = ${id} FOR UPDATE`
    })
  ).pipe(Effect.mapError(storeError(key, "taking the grant's lock")))

const write = (ctx: Ctx, key: string, id: string, tokens: TokenSet, expected: string | undefined) =>
  Effect.gen(function*() {
    const { access, refresh } = yield* sealed(ctx, key, tokens)
    const athlete = tokens.athlete === undefined ? null : JSON.stringify(tokens.athlete)
    const scopes = `{${tokens.scopes.join(",")}}`
    if (expected === undefined) {
      yield* ctx.sql`INSERT INTO strava_grants
          (athlete_id, token_type, access_token, refresh_token, key_id, expires_at, scopes, athlete)
        VALUES (${id}, ${tokens.tokenType}, ${access}, ${refresh}, ${ctx.cipher.keyId},
          to_timestamp(${tokens.expiresAt}), ${scopes}::text[], ${athlete}::jsonb)
        ON CONFLICT (athlete_id) DO UPDATE SET token_type = excluded.token_type,
          access_token = excluded.access_token, refresh_token = excluded.refresh_token,
          key_id = excluded.key_id, expires_at = excluded.expires_at, scopes = excluded.scopes,
          athlete = coalesce(excluded.athlete, strava_grants.athlete),
          version = strava_grants.version + 1, updated_at = now()`
      return true
    }
    const changed = yield* ctx.sql`UPDATE strava_grants SET token_type = ${tokens.tokenType},
        access_token = ${access}, refresh_token = ${refresh}, key_id = ${ctx.cipher.keyId},
        expires_at = to_timestamp(${tokens.expiresAt}), scopes = ${scopes}::text[],
        athlete = coalesce(${athlete}::jsonb, athlete), version = version + 1, updated_at = now()
      WHERE athlete_id = ${id} AND version = ${expected} RETURNING 1 AS one`
    return changed.length === 1
  }).pipe(Effect.mapError(storeError(key, "writing the grant")))

// A write under the lock is made durable before it returns: commit the lock's transaction, then hold the
// row again for what is left of `withLock`. The write stands once the commit succeeded: if the row cannot be
// locked again (another holder, a lost connection), the transaction is rolled back and the rest of `withLock`
// runs without the lock (every caller's write is its last step), which is logged.
const commitHeld = (ctx: Ctx, key: string, id: string, lock: Held) =>
  Effect.gen(function*() {
    yield* on(lock.connection, ctx.sql.unsafe("COMMIT")).pipe(Effect.mapError(storeError(key, "committing the grant")))
    lock.open = false
    yield* lockRow(ctx, key, id, lock).pipe(
      Effect.catchAll((error) =>
        Effect.zipRight(
          on(lock.connection, ctx.sql.unsafe("ROLLBACK")).pipe(
            Effect.ignore,
            Effect.tap(() => Effect.sync(() => (lock.open = false)))
          ),
          Effect.logWarning("the grant was written; its lock could not be taken again").pipe(
            Effect.annotateLogs({ athlete_id: key, error: error.message })
          )
        )
      )
    )
  })

const put = (ctx: Ctx): GrantStoreShape["put"] => (key, tokens, putOptions) =>
  Effect.gen(function*() {
    const id = yield* athleteId(key)
    const lock = (yield* FiberRef.get(ctx.held)).get(key)
    const run = <A, E, R>(effect: Effect.Effect<A, E, R>) => lock === undefined ? effect : on(lock.connection, effect)
    if (putOptions?.replaces !== undefined) {
      // Compare-and-set: the stored set must still be the one replaced; its version guards the write.
      const stored = yield* run(read(ctx, key, id))
      if (!mayReplace(Option.map(stored, ([tokens]) => tokens), putOptions)) {
        return yield* new StaleGrant({ key })
      }
      const version = Option.getOrThrow(stored)[1]
      if (!(yield* run(write(ctx, key, id, tokens, version)))) return yield* new StaleGrant({ key })
    } else {
      yield* run(write(ctx, key, id, tokens, undefined))
    }
    if (lock !== undefined) yield* commitHeld(ctx, key, id, lock)
  }).pipe(Effect.withSpan("SqlGrantStore.put", { attributes: { athlete_id: key } }))

const withLock = (ctx: Ctx): GrantStoreShape["withLock"] => (key, effect) =>
  Effect.gen(function*() {
    const id = yield* athleteId(key)
    const current = yield* FiberRef.get(ctx.held)
    if (current.has(key)) return yield* effect // already held by this fiber
    const connection = yield* ctx.sql.reserve.pipe(Effect.mapError(storeError(key, "connecting")))
    const lock: Held = { connection, open: false }
    // Whatever happens (failure, interruption), an open transaction is rolled back before the connection goes
    // back to the pool (finalizers run last-added first: this one before the connection's release).
    yield* Effect.addFinalizer(() =>
      lock.open ? on(connection, ctx.sql.unsafe("ROLLBACK")).pipe(Effect.ignore) : Effect.void
    )
    yield* lockRow(ctx, key, id, lock)
    const result = yield* Effect.locally(effect, ctx.held, new Map(current).set(key, lock))
    // Every write under the lock was committed where it was made (`put`, `remove`): this ends reads only.
    yield* on(connection, ctx.sql.unsafe("COMMIT")).pipe(Effect.ignore)
    lock.open = false
    return result
  }).pipe(Effect.scoped, Effect.withSpan("SqlGrantStore.withLock", { attributes: { athlete_id: key } }))

/**
 * Builds the store over the `SqlClient` in context. Run `migrate` once before (every replica may run it).
 *
 * @since 0.3.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<SqlGrantStore, never, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const cipher = options.cipher ?? TokenCipher.plain
    const ctx: Ctx = {
      sql,
      cipher,
      held: FiberRef.unsafeMake<ReadonlyMap<string, Held>>(new Map()),
      lockTimeoutMillis: Math.max(1, Math.round(Duration.toMillis(options.lockTimeout ?? Duration.seconds(30))))
    }

    const store: SqlGrantStore = {
      get: (key) =>
        Effect.flatMap(athleteId(key), (id) => forKey(ctx, key)(read(ctx, key, id))).pipe(
          Effect.map(Option.map(([tokens]) => tokens)),
          Effect.withSpan("SqlGrantStore.get", { attributes: { athlete_id: key } })
        ),
      put: put(ctx),
      remove: (key) =>
        Effect.gen(function*() {
          const id = yield* athleteId(key)
          const lock = (yield* FiberRef.get(ctx.held)).get(key)
          const remove = sql`DELETE FROM strava_grants WHERE athlete_id = ${id}`.pipe(
            Effect.mapError(storeError(key, "removing the grant"))
          )
          if (lock === undefined) {
            yield* remove
          } else {
            // Under the lock: durable before it returns, as `put`.
            yield* on(lock.connection, remove)
            yield* commitHeld(ctx, key, id, lock)
          }
        }).pipe(Effect.asVoid, Effect.withSpan("SqlGrantStore.remove", { attributes: { athlete_id: key } })),
      list: sql<{ readonly athlete_id: string }>`SELECT athlete_id::text AS athlete_id FROM strava_grants
        ORDER BY athlete_id`.pipe(
        Effect.map((rows) => rows.map((row) => row.athlete_id)),
        Effect.mapError(storeError("*", "listing grants"))
      ),
      withLock: withLock(ctx),
      summaries: (limit) =>
        sql<{
          readonly athlete_id: string
          readonly athlete: unknown
          readonly scopes: ReadonlyArray<string>
          readonly expires_at: string
          readonly updated_at: Date
        }>`SELECT athlete_id::text AS athlete_id, athlete, scopes,
            floor(extract(epoch from expires_at))::bigint::text AS expires_at, updated_at
          FROM strava_grants ORDER BY updated_at DESC LIMIT ${Math.max(0, Math.floor(limit))}`.pipe(
          Effect.mapError(storeError("*", "listing grants")),
          Effect.map((rows) =>
            rows.map((row): GrantSummary => ({
              athleteId: row.athlete_id,
              athlete: Option.getOrUndefined(Schema.decodeUnknownOption(SummaryAthlete)(row.athlete)),
              scopes: row.scopes,
              expiresAt: Number(row.expires_at),
              updatedAt: row.updated_at
            }))
          )
        ),
      count: sql<{ readonly n: string }>`SELECT count(*)::text AS n FROM strava_grants`.pipe(
        Effect.mapError(storeError("*", "counting grants")),
        Effect.map((rows) => Number(rows[0]?.n ?? 0))
      ),
      reencrypt: Effect.gen(function*() {
        let rewritten = 0
        const keys = yield* store.list
        for (const key of keys) {
          rewritten += yield* withLock(ctx)(
            key,
            Effect.gen(function*() {
              const rows = yield* forKey(ctx, key)(
                sql<{ readonly key_id: string | null }>`SELECT key_id FROM strava_grants WHERE athlete_id = ${key}`
              ).pipe(Effect.mapError(storeError(key, "reading the grant")))
              if (rows.length === 0 || rows[0]!.key_id === cipher.keyId) return 0
              const stored = yield* store.get(key)
              if (Option.isNone(stored)) return 0
              yield* put(ctx)(key, stored.value, { replaces: stored.value }).pipe(
                Effect.catchTag("StaleGrant", () => Effect.void)
              )
              return 1
            })
          )
        }
        return rewritten
      })
    }
    return store
  })

/**
 * The store as the core's `GrantStore`, after the migrations ran.
 *
 * @since 0.3.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<GrantStore, Migrations.MigrationFailed, SqlClient.SqlClient> =>
  Layer.effect(GrantStore, Effect.zipRight(Migrations.run, make(options)))

/**
 * The store under its own tag too (for `summaries`, `count`, `reencrypt`).
 *
 * @since 0.3.0
 * @category tags
 */
export class SqlGrants extends Effect.Tag("@strava-auth/server/SqlGrants")<SqlGrants, SqlGrantStore>() {}

/**
 * Both tags from one store, after the migrations ran.
 *
 * @since 0.3.0
 * @category layers
 */
export const layerBoth = (
  options: Options = {}
): Layer.Layer<GrantStore | SqlGrants, Migrations.MigrationFailed, SqlClient.SqlClient> =>
  Layer.effectContext(
    Effect.gen(function*() {
      yield* Migrations.run
      const store = yield* make(options)
      return Context.make(GrantStore, store as GrantStoreShape).pipe(Context.add(SqlGrants, store))
    })
  )
