import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import { TokenSet } from "@strava-auth/core/Token"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { inject } from "vitest"

/** The suite's server (started by postgres.setup.ts), as an admin URL. */
export const serverUrl = (): string => inject("postgresUrl")

const urlFor = (database: string) => {
  const url = new URL(serverUrl())
  url.pathname = `/${database}`
  return Redacted.make(url.toString())
}

const admin = PgClient.layer({ url: Redacted.make(serverUrl()), maxConnections: 1 })

/**
 * A database of the test's own, dropped when the scope closes: its URL. Each test gets a clean one, so tests
 * can run in any order.
 */
export const freshDatabase: Effect.Effect<Redacted.Redacted<string>, never, Scope.Scope> = Effect.gen(function*() {
  const name = `t_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
  yield* Effect.acquireRelease(
    Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`CREATE DATABASE ${name}`)).pipe(
      Effect.provide(admin),
      Effect.orDie
    ),
    () =>
      Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).pipe(
        Effect.provide(admin),
        Effect.orDie
      )
  )
  return urlFor(name)
})

/** A pool on `url`: one per simulated replica. */
export const pool = (url: Redacted.Redacted<string>, maxConnections = 10) =>
  PgClient.layer({ url, maxConnections, connectTimeout: Duration.seconds(5) })

/** A pool, as a layer, on a fresh database of the test's own. */
export const freshPool = Layer.unwrapScoped(Effect.map(freshDatabase, (url) => pool(url)))

export const set = (name: string, expiresAt = 1_900_000_000, athleteId?: number) =>
  new TokenSet({
    tokenType: "Bearer",
    accessToken: Redacted.make(`access-${name}`),
    refreshToken: Redacted.make(`refresh-${name}`),
    expiresAt,
    scopes: ["read", "activity:read"],
    ...(athleteId === undefined ? {} : { athlete: { id: athleteId, firstname: `First${athleteId}` } })
  })
