/**
 * @since 0.3.0
 */
export * as Athletes from "./Athletes.js"
export * as Connect from "./Connect.js"
export * as Database from "./Database.js"
export * as EmbeddedPostgres from "./EmbeddedPostgres.js"
export * as Migrations from "./Migrations.js"
export * as Page from "./Page.js"
export * as RateBudget from "./RateBudget.js"
export * as SqlGrantStore from "./SqlGrantStore.js"
export * as StravaServer from "./StravaServer.js"
export * as TokenCipher from "./TokenCipher.js"
export * as Webhook from "./Webhook.js"
