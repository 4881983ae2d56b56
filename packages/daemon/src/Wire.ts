/**
 * The socket's JSON replies, one Schema each, shared by the daemon that writes them (`SocketServer`) and the
 * clients that read them (`SocketClient`, the CLI, `DaemonTokenSource`). Each carries `version`; a reader
 * accepts what it knows and ignores fields it does not (so a newer daemon's additions do not break an older
 * client). docs/SOCKET.md describes the same shapes for scripts.
 *
 * @since 0.2.0
 */
import type * as Option from "effect/Option"
import * as Schema from "effect/Schema"

/**
 * The replies' format version.
 *
 * @since 0.2.0
 * @category constants
 */
export const version = 1

const Version = Schema.optionalWith(Schema.Literal(version), { default: () => version })

/**
 * `GET /token.json` (200).
 *
 * @since 0.2.0
 * @category schemas
 */
export const TokenJson = Schema.Struct({
  version: Version,
  access_token: Schema.NonEmptyString,
  token_type: Schema.String,
  expires_at: Schema.Int,
  scope: Schema.String,
  athlete_id: Schema.NullOr(Schema.Number)
})

/**
 * @since 0.2.0
 * @category models
 */
export type TokenJson = typeof TokenJson.Type

/**
 * How `POST /refresh` came to its token: `refreshed` (a new token), `same` (Strava returned the current
 * one: the one-hour rule), `current` (another process had just refreshed), `coalesced` (a refresh was
 * asked within the floor of the last attempt: the current token, and Strava was not asked again).
 *
 * @since 0.2.0
 * @category schemas
 */
export const RefreshOutcome = Schema.Literal("refreshed", "same", "current", "coalesced")

/**
 * `POST /refresh` (200): the token, how it was had, and a sentence for people.
 *
 * @since 0.2.0
 * @category schemas
 */
export const RefreshReply = Schema.Struct({
  ...TokenJson.fields,
  outcome: RefreshOutcome,
  message: Schema.String
})

/**
 * @since 0.2.0
 * @category models
 */
export type RefreshReply = typeof RefreshReply.Type

/**
 * The wire states (`/health`'s `status`).
 *
 * @since 0.2.0
 * @category schemas
 */
export const Status = Schema.Literal("ok", "refreshing", "retrying", "needs_login")

/**
 * `GET /health` (200 when a token can be served, else 503).
 *
 * @since 0.2.0
 * @category schemas
 */
export const Health = Schema.Struct({
  version: Version,
  status: Status,
  expires_at: Schema.NullOr(Schema.Int),
  next_refresh_at: Schema.NullOr(Schema.String),
  last_refresh_at: Schema.NullOr(Schema.String),
  consecutive_failures: Schema.Int,
  last_error: Schema.NullOr(Schema.String),
  athlete_id: Schema.NullOr(Schema.Number),
  scope: Schema.NullOr(Schema.String)
})

/**
 * @since 0.2.0
 * @category models
 */
export type Health = typeof Health.Type

/**
 * `GET /accounts`: every account the daemon serves, each with its `/health`.
 *
 * @since 0.3.0
 * @category schemas
 */
export const AccountsReply = Schema.Struct({
  version: Version,
  accounts: Schema.Array(Schema.Struct({ account: Schema.String, ...Health.fields }))
})

/**
 * @since 0.3.0
 * @category models
 */
export type AccountsReply = typeof AccountsReply.Type

/**
 * Every non-200 reply. `needs_login`: log in again; anything else: try again later (`transient`, on
 * `POST /refresh`, says whether the daemon itself will).
 *
 * @since 0.2.0
 * @category schemas
 */
export const ErrorReply = Schema.Struct({
  version: Version,
  error: Schema.String,
  message: Schema.String,
  transient: Schema.optional(Schema.Boolean)
})

/**
 * @since 0.2.0
 * @category models
 */
export type ErrorReply = typeof ErrorReply.Type

/**
 * Decodes a reply body with one of the schemas above; `None` when it is not that reply.
 *
 * @since 0.2.0
 * @category decoding
 */
export const decode = <A, I>(schema: Schema.Schema<A, I>) => {
  const parse = Schema.decodeUnknownOption(Schema.parseJson(schema))
  return (body: string): Option.Option<A> => parse(body)
}

/**
 * @since 0.2.0
 * @category decoding
 */
export const decodeTokenJson = decode(TokenJson)

/**
 * @since 0.2.0
 * @category decoding
 */
export const decodeHealth = decode(Health)

/**
 * @since 0.2.0
 * @category decoding
 */
export const decodeRefreshReply = decode(RefreshReply)

/**
 * @since 0.2.0
 * @category decoding
 */
export const decodeErrorReply = decode(ErrorReply)

/**
 * @since 0.3.0
 * @category decoding
 */
export const decodeAccountsReply = decode(AccountsReply)
