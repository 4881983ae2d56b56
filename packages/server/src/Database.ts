/**
 * Where the grants live: the PostgreSQL given by `DATABASE_URL` (any server from 15 on), or, when it is unset
 * and the app allows it, an embedded one in a directory of the app's own (`EmbeddedPostgres`). Only this
 * module names the driver (`@effect/sql-pg`); the store and the routes are written against `SqlClient`.
 *
 * @since 0.3.0
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Duration from "effect/Duration"
import type * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"

/**
 * A pool on the server at `url`, with short timeouts so that a database that went away fails requests fast
 * (a clear 503) and is found again when it is back.
 *
 * @since 0.3.0
 * @category layers
 */
export const layerPg = (
  url: Redacted.Redacted<string>,
  options: { readonly maxConnections?: number; readonly applicationName?: string } = {}
): Layer.Layer<SqlClient.SqlClient | PgClient.PgClient, SqlError> =>
  PgClient.layer({
    url,
    maxConnections: options.maxConnections ?? 20,
    connectTimeout: Duration.seconds(5),
    idleTimeout: Duration.seconds(30),
    applicationName: options.applicationName ?? "strava-auth"
  })

/**
 * Whether a `DATABASE_URL` is a PostgreSQL URL; the message says what is expected (and never repeats the URL,
 * which may hold a password).
 *
 * @since 0.3.0
 * @category validation
 */
export const checkUrl = (url: Redacted.Redacted<string>): string | undefined => {
  let parsed: URL
  try {
    parsed = new URL(Redacted.value(url))
  } catch {
    return "DATABASE_URL is not a URL: give postgres://USER:PASSWORD@HOST:PORT/DATABASE."
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    return `DATABASE_URL must start with postgres:// (it starts with ${parsed.protocol}//).`
  }
  return undefined
}
