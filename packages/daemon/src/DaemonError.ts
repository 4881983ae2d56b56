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
import type { Token } from "@strava-auth/core"
import * as ConfigError from "effect/ConfigError"
import * as Data from "effect/Data"
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
  reason: Schema.Literal("Permissions", "Malformed", "Io"),
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
 * Strava answered a refresh, but the token file could not be written even after retries. Carries the new
 * token set so that the caller can keep it and write it later: the old refresh token is already dead.
 *
 * @since 0.1.0
 * @category errors
 */
export class WriteFailed extends Data.TaggedError("WriteFailed")<{
  readonly error: TokenFileError
  readonly tokens: Token.TokenSet
}> {
  /** @since 0.1.0 */
  get transient(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return `${this.error.message} Strava has already rotated the refresh token: fix this at once, or log in again.`
  }
}

/**
 * Bad usage: exit 64.
 *
 * @since 0.1.0
 * @category errors
 */
export class UsageError extends Schema.TaggedError<UsageError>()("UsageError", {
  detail: Schema.String
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
 * A refresh done by the helper process (`strava-auth refresh --local --report`) failed; its report says how.
 *
 * @since 0.1.0
 * @category errors
 */
export class RefreshFailed extends Schema.TaggedError<RefreshFailed>()("RefreshFailed", {
  /** The original error's tag (`InvalidGrant`, `ServerError`, ...). */
  cause: Schema.String,
  detail: Schema.String,
  retryable: Schema.Boolean,
  /** For a 429: when Strava's window resets (epoch milliseconds). */
  retryAt: Schema.optional(Schema.Number),
  /** Strava answered but the helper could not write the file: the token file's text, for the daemon to keep. */
  unsaved: Schema.optional(Schema.Redacted(Schema.String))
}) {
  /** @since 0.1.0 */
  get transient(): boolean {
    return this.retryable
  }
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
 * The exit code for a failure: by tag first, then by whether it is transient.
 *
 * @since 0.1.0
 * @category exit codes
 */
export const exitCodeOf = (error: unknown): number => {
  if (ConfigError.isConfigError(error)) return ExitCode.configuration
  if (typeof error !== "object" || error === null || !("_tag" in error)) return ExitCode.unexpected
  if (error instanceof RefreshFailed) return exitCodeOf({ _tag: error.cause, transient: error.retryable })
  switch (error._tag) {
    case "UsageError":
      return ExitCode.usage
    case "LoginRequired":
    case "InvalidGrant":
    case "AuthorizationDenied":
    case "StateMismatch":
    case "MissingCode":
    case "InsufficientScope":
      return ExitCode.loginNeeded
    case "ConfigurationError":
    case "TokenFileError":
    case "WriteFailed":
    case "InvalidClient":
    case "AppInactive":
    case "InvalidScope":
      return ExitCode.configuration
  }
  return "transient" in error && error.transient === true ? ExitCode.temporary : ExitCode.unexpected
}

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
