/**
 * Everything a web app with many athletes needs, as one layer over a `SqlClient` and an `HttpClient`: the
 * migrations, the SQL grant store (`GrantStore` and `SqlGrants`), Strava's OAuth (`StravaOAuth`,
 * `StravaConfig`), the app-wide rate budget (every Strava call but token calls spends from it) and per-athlete
 * access (`Athletes`).
 *
 * ```ts
 * const StravaLive = StravaServer.layer({ config: { clientId, clientSecret } }).pipe(
 *   Layer.provide(Database.layerPg(Redacted.make(process.env.DATABASE_URL!))),
 *   Layer.provide(FetchHttpClient.layer)
 * )
 * ```
 *
 * @since 0.3.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import type { GrantStore } from "@strava-auth/core/GrantStore"
import * as StravaConfig from "@strava-auth/core/StravaConfig"
import * as StravaOAuth from "@strava-auth/core/StravaOAuth"
import type * as Duration from "effect/Duration"
import * as Layer from "effect/Layer"

import * as Athletes from "./Athletes.js"
import type { MigrationFailed } from "./Migrations.js"
import * as RateBudget from "./RateBudget.js"
import * as SqlGrantStore from "./SqlGrantStore.js"
import type { TokenCipher } from "./TokenCipher.js"

/**
 * @since 0.3.0
 * @category models
 */
export interface Options {
  readonly config: StravaConfig.Input
  /** Refresh when this little is left. Default 45 minutes. */
  readonly margin?: Duration.DurationInput | undefined
  /** Tokens at rest (`TokenCipher.make` from `STRAVA_AUTH_ENCRYPTION_KEY`). Default: as they are. */
  readonly cipher?: TokenCipher | undefined
}

/**
 * @since 0.3.0
 * @category models
 */
export type Services =
  | GrantStore
  | SqlGrantStore.SqlGrants
  | StravaOAuth.StravaOAuth
  | StravaConfig.StravaConfig
  | HttpClient.HttpClient
  | RateBudget.RateBudget
  | Athletes.Athletes

/**
 * @since 0.3.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<Services, MigrationFailed, SqlClient.SqlClient | HttpClient.HttpClient> => {
  const config = StravaConfig.layer(options.config)
  const budgeted = RateBudget.layer
  const oauth = StravaOAuth.layer.pipe(Layer.provideMerge(Layer.merge(config, budgeted)))
  const store = SqlGrantStore.layerBoth({ cipher: options.cipher })
  return Athletes.layer({ margin: options.margin }).pipe(Layer.provideMerge(Layer.merge(oauth, store)))
}
