/**
 * The daemon's own failures, and the one place that maps every failure to an exit code (sysexits):
 *
 * | code | meaning |
 * |---|---|
 * | 0 | ok |
 * | 1 | unexpected |
 * | 64 | bad usage |
 * | 75 | temporary failure: Strava unreachable, 5xx, rate limited, no valid token to give, socket busy |
 * | 77 | login needed: no token, grant revoked or invalid |
 * | 78 | configuration missing or invalid (the message names the variable) |
 *
 * @since 0.1.0
 */
import type { AuthorizationError, RefreshEngine } from "@strava-auth/core"
import * as ConfigError from "effect/ConfigError"
import * as Match from "effect/Match"
import * as Schema from "effect/Schema"

/**
 * Configuration is missing or invalid: exit 78.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConfigurationError extends Schema.TaggedError<ConfigurationError>()("ConfigurationError", {
  detail: Schema.String
}) {
  /** @since 0.1.0 */
  override get message(): string {
    return this.detail
  }
}

/**
 * The token file is unusable: unsafe permissions or malformed. Exit 78; the file is left as it is.
 *
 * @since 0.1.0
 * @category errors
 */
export class TokenFileError extends Schema.TaggedError<TokenFileError>()("TokenFileError", {
  path: Schema.String,
  reason: Schema.Literal("Permissions", "Malformed", "Io", "Busy", "NoSpace"),
  detail: Schema.String
}) {
  /** A person must fix the file (or the disk); the refresher still retries writes (see `Refresher.retryable`). */
  get transient(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return `token file ${this.path}: ${this.detail}`
  }
}

/**
 * Strava rotated the refresh token and the answer could not be saved before the process that held it had to
 * give up: the grant is lost, a login is needed. Exit 77.
 *
 * @since 0.2.0
 * @category errors
 */
export class RotationLost extends Schema.TaggedError<RotationLost>()("RotationLost", {
  detail: Schema.String
}) {
  /** @since 0.2.0 */
  get transient(): boolean {
    return false
  }
  /** @since 0.2.0 */
  override get message(): string {
    return this.detail
  }
}

/**
 * Bad usage: exit 64.
 *
 * @since 0.1.0
 * @category errors
 */
export class UsageError extends Schema.TaggedError<UsageError>()("UsageError", {
  detail: Schema.String,
  /** The command it is about (`"token"`, `"webhook create"`), named in the printed message. */
  command: Schema.optional(Schema.String)
}) {
  /** @since 0.1.0 */
  override get message(): string {
    return this.detail
  }
}

/**
 * Something that should work did not (socket busy, daemon unreachable mid-request): exit 75 when
 * `transient`, else 1.
 *
 * @since 0.1.0
 * @category errors
 */
export class DaemonFailure extends Schema.TaggedError<DaemonFailure>()("DaemonFailure", {
  detail: Schema.String,
  transient: Schema.Boolean
}) {
  /** @since 0.1.0 */
  override get message(): string {
    return this.detail
  }
}

/**
 * @since 0.1.0
 * @category exit codes
 */
export const ExitCode = {
  ok: 0,
  unexpected: 1,
  usage: 64,
  temporary: 75,
  loginNeeded: 77,
  configuration: 78
} as const

/**
 * Every failure a command can end with. A new error must be added here, and then `exitCodeOf` does not compile
 * until it has an exit code.
 *
 * @since 0.2.0
 * @category exit codes
 */
export type Failure =
  | ConfigError.ConfigError
  | ConfigurationError
  | TokenFileError
  | UsageError
  | DaemonFailure
  | RotationLost
  | RefreshEngine.RefreshError
  | RefreshEngine.TokenUnavailable
  | AuthorizationError.AuthorizationDenied
  | AuthorizationError.StateMismatch
  | AuthorizationError.MissingCode
  | AuthorizationError.InsufficientScope
  | AuthorizationError.InvalidScope

/**
 * The exit code for a failure: an exhaustive match over its tag; a failure that knows whether it is
 * transient says so where the tag alone does not decide.
 *
 * @since 0.1.0
 * @category exit codes
 */
export const exitCodeOf = (error: Failure): number =>
  // effect's ConfigError: a variable missing or invalid
  ConfigError.isConfigError(error) ? ExitCode.configuration : Match.value(error).pipe(
    Match.tagsExhaustive({
      ConfigurationError: () => ExitCode.configuration,
      UsageError: () => ExitCode.usage,
      RotationLost: () => ExitCode.loginNeeded,
      DaemonFailure: (e) => e.transient ? ExitCode.temporary : ExitCode.unexpected,
      // a file a person must fix; a lock held too long or an I/O failure may pass
      TokenFileError: (e) =>
        e.reason === "Malformed" || e.reason === "Permissions" ? ExitCode.configuration : ExitCode.temporary,
      GrantStoreError: (e) =>
        e.reason === "Malformed" || e.reason === "Permissions" ? ExitCode.configuration : ExitCode.temporary,
      GrantUnsaved: () => ExitCode.configuration,
      RefreshAborted: () => ExitCode.temporary,
      LoginRequired: () => ExitCode.loginNeeded,
      TokenUnavailable: () => ExitCode.temporary,
      InvalidGrant: () => ExitCode.loginNeeded,
      InvalidClient: () => ExitCode.configuration,
      AppInactive: () => ExitCode.configuration,
      MissingScope: () => ExitCode.loginNeeded,
      Unauthorized: () => ExitCode.loginNeeded,
      RateLimited: () => ExitCode.temporary,
      ServerError: () => ExitCode.temporary,
      TransportError: () => ExitCode.temporary,
      UnexpectedResponse: () => ExitCode.temporary,
      AuthorizationDenied: () => ExitCode.loginNeeded,
      StateMismatch: () => ExitCode.loginNeeded,
      MissingCode: () => ExitCode.loginNeeded,
      InsufficientScope: () => ExitCode.loginNeeded,
      InvalidScope: () => ExitCode.configuration
    })
  )

/**
 * A `ConfigError`'s text, naming the variable, without Effect's internal phrasing.
 *
 * @since 0.1.0
 * @category formatting
 */
export const describeConfigError = (error: ConfigError.ConfigError): string => {
  const messages: Array<string> = []
  const walk = (e: ConfigError.ConfigError): void => {
    switch (e._op) {
      case "And":
      case "Or":
        walk(e.left)
        walk(e.right)
        return
      case "MissingData":
      case "InvalidData":
      case "SourceUnavailable":
      case "Unsupported":
        messages.push(
          e.path.length > 0 && !e.message.includes(e.path.join("_")) ? `${e.path.join("_")}: ${e.message}` : e.message
        )
    }
  }
  walk(error)
  return Array.from(new Set(messages)).join("; ")
}
