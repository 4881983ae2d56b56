/**
 * @since 0.3.0
 */
export * as Database from "./Database.js"
export * as EmbeddedPostgres from "./EmbeddedPostgres.js"
export * as Migrations from "./Migrations.js"
export * as SqlGrantStore from "./SqlGrantStore.js"
export * as TokenCipher from "./TokenCipher.js"
