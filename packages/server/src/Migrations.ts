/**
 * The server package's tables, created and changed by `@effect/sql`'s migrator. Every replica runs them at
 * start; an advisory lock lets one at a time through, and the migrator skips what already ran. Their own
 * history table, `strava_auth_migrations`, keeps them apart from the app's migrations.
 *
 * - 1 `strava_grants`: one row per athlete (the `SqlGrantStore`).
 * - 2 `strava_auth_states`: the connect flow's one-use states, so that a connect begun on one replica
 *   completes on another (`Connect`).
 * - 3 `strava_webhook_events`: Strava's push events, stored before they are answered and processed by any
 *   replica (`Webhook`).
 *
 * @since 0.3.0
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

/**
 * The migrations could not run; the message says why and what to do.
 *
 * @since 0.3.0
 * @category errors
 */
export class MigrationFailed extends Schema.TaggedError<MigrationFailed>()("MigrationFailed", {
  detail: Schema.String
}) {
  /** @since 0.3.0 */
  override get message(): string {
    return `the strava-auth tables could not be created or updated: ${this.detail}`
  }
}

/**
 * The history table.
 *
 * @since 0.3.0
 * @category constants
 */
export const historyTable = "strava_auth_migrations"

/** An arbitrary, fixed advisory lock key: "strava-auth migrations". */
const LOCK_KEY = 738_201_517

const migrations: Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> = {
  "1_strava_grants": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql`CREATE TABLE strava_grants (
      athlete_id bigint PRIMARY KEY,
      token_type text NOT NULL DEFAULT 'Bearer',
      access_token text NOT NULL,
      refresh_token text NOT NULL,
      key_id text,
      expires_at timestamptz NOT NULL,
      scopes text[] NOT NULL,
      athlete jsonb,
      version bigint NOT NULL DEFAULT 1,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`),
  "2_strava_auth_states": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql`CREATE TABLE strava_auth_states (
      digest text PRIMARY KEY,
      binding text NOT NULL,
      return_to text,
      expires_at timestamptz NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    )`),
  "3_strava_webhook_events": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.zipRight(
      sql`CREATE TABLE strava_webhook_events (
        id bigserial PRIMARY KEY,
        identity text NOT NULL UNIQUE,
        subscription_id bigint,
        owner_id bigint NOT NULL,
        object_type text NOT NULL,
        object_id bigint NOT NULL,
        aspect_type text NOT NULL,
        event_time bigint NOT NULL,
        updates jsonb NOT NULL DEFAULT '{}'::jsonb,
        received_at timestamptz NOT NULL DEFAULT now(),
        deliveries integer NOT NULL DEFAULT 1,
        claimed_until timestamptz,
        attempts integer NOT NULL DEFAULT 0,
        processed_at timestamptz,
        outcome text
      )`,
      sql`CREATE INDEX strava_webhook_events_pending ON strava_webhook_events (id) WHERE processed_at IS NULL`
    ))
}

/**
 * Runs what has not run yet, one replica at a time.
 *
 * @since 0.3.0
 * @category migrations
 */
export const run: Effect.Effect<void, MigrationFailed, SqlClient.SqlClient> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const connection = yield* sql.reserve
  const onLockConnection = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.provideService(effect, SqlClient.TransactionConnection, [connection, 1] as const)
  yield* Effect.acquireRelease(
    onLockConnection(sql`SELECT pg_advisory_lock(${LOCK_KEY})`),
    () => onLockConnection(sql`SELECT pg_advisory_unlock(${LOCK_KEY})`).pipe(Effect.ignore)
  )
  yield* Migrator.make({})({ loader: Migrator.fromRecord(migrations), table: historyTable })
}).pipe(
  Effect.scoped,
  Effect.mapError((error) =>
    new MigrationFailed({
      detail: error._tag === "MigrationError"
        ? error.message
        : `the database refused or did not answer (${
          typeof (error.cause as { code?: unknown } | undefined)?.code === "string"
            ? `SQLSTATE ${(error.cause as { code: string }).code}`
            : "no connection"
        }); check DATABASE_URL and that the user may create tables.`
    })
  ),
  Effect.withSpan("Migrations.run")
)
