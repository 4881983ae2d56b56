/**
 * What can go wrong between "open this URL" and "here is your code": the athlete said no, the redirect is
 * not ours (CSRF), the code is missing, fewer scopes were granted than the app needs, or the app asked
 * for a scope Strava does not have.
 *
 * None of these is transient: retrying the same redirect cannot succeed.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * A scope name Strava does not know. Raised before any request is made.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidScope extends Schema.TaggedError<InvalidScope>()("InvalidScope", {
  unknown: Schema.Array(Schema.String),
  known: Schema.Array(Schema.String)
}) {
  /** @since 0.1.0 */
  get transient(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return `Unknown Strava scope ${this.unknown.map((s) => JSON.stringify(s)).join(", ")}. ` +
      `Use a comma-separated list of: ${this.known.join(", ")}.`
  }
}

/**
 * The athlete pressed Cancel on Strava's authorize page (`error=access_denied`).
 *
 * @since 0.1.0
 * @category errors
 */
export class AuthorizationDenied extends Schema.TaggedError<AuthorizationDenied>()("AuthorizationDenied", {
  error: Schema.String
}) {
  /** @since 0.1.0 */
  get transient(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return this.error === "access_denied"
      ? "The athlete denied access on Strava's authorize page. Start the login again and press Authorize."
      : `Strava answered the authorization with error "${this.error}". Start the login again.`
  }
}

/**
 * The redirect's `state` is missing or is not the one this login sent: it was not started by us, or it is
 * a replay. Possible CSRF; the code (if any) must not be exchanged.
 *
 * @since 0.1.0
 * @category errors
 */
export class StateMismatch extends Schema.TaggedError<StateMismatch>()("StateMismatch", {
  reason: Schema.Literal("Missing", "Mismatch")
}) {
  /** @since 0.1.0 */
  get transient(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return this.reason === "Missing"
      ? "The redirect carries no state parameter, so it cannot be matched to this login (possible CSRF). " +
        "Open the authorize URL this login printed, not an older one."
      : "The redirect's state does not match this login (possible CSRF or an old link). " +
        "Open the authorize URL this login printed, not an older one."
  }
}

/**
 * The redirect has neither a `code` nor an `error`.
 *
 * @since 0.1.0
 * @category errors
 */
export class MissingCode extends Schema.TaggedError<MissingCode>()("MissingCode", {}) {
  /** @since 0.1.0 */
  get transient(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return "The redirect has no code parameter. Paste the full address the browser ended on after you pressed " +
      "Authorize (it contains code=...)."
  }
}

/**
 * The athlete unticked scopes the app requires.
 *
 * @since 0.1.0
 * @category errors
 */
export class InsufficientScope extends Schema.TaggedError<InsufficientScope>()("InsufficientScope", {
  missing: Schema.Array(Schema.String),
  granted: Schema.Array(Schema.String)
}) {
  /** @since 0.1.0 */
  get transient(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return `Strava granted ${this.granted.join(",") || "no scopes"} but ${this.missing.join(",")} ` +
      `${this.missing.length === 1 ? "is" : "are"} required. Log in again and leave ` +
      `${this.missing.length === 1 ? "that box" : "those boxes"} ticked on Strava's authorize page.`
  }
}
