/**
 * Strava's error envelope and the failures a caller can match on.
 *
 * Strava does not follow RFC 6749 here: there is no `error` field, only
 * `{"message": "...", "errors": [{"resource": "...", "field": "...", "code": "..."}]}`, and the same body
 * (`Application`, field `""`, `invalid`) means "wrong client secret" on `/oauth/token` but "unknown access
 * token" on the API. So a response is classified by status, by `resource`/`field`/`code` and by which
 * endpoint answered, in one place: `fromResponse`. The table of bodies and what each means is in
 * docs/STRAVA.md.
 *
 * Every error says whether it is `transient` (keep the token, back off, retry) and, in its message, what to
 * do next. No message contains a token or the client secret: the fields carry only status codes, Strava's
 * resource/field/code triple and our own descriptions. The server's own text (the envelope's message and
 * resource/field/code) is not trusted either: a broken or hostile server may echo what it was sent, so
 * `fromResponse` replaces the secrets of the request with `[redacted]`, turns control characters into
 * spaces and cuts each text to 200 characters (`scrub`) before any of it reaches an error.
 *
 * @since 0.1.0
 */
import * as Encoding from "effect/Encoding"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

import * as RateLimit from "./RateLimit.js"

/**
 * One item of the envelope's `errors`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const FaultItem = Schema.Struct({
  resource: Schema.optionalWith(Schema.String, { default: () => "" }),
  field: Schema.optionalWith(Schema.String, { default: () => "" }),
  code: Schema.optionalWith(Schema.String, { default: () => "" })
})

/**
 * Strava's error envelope.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Fault = Schema.Struct({
  message: Schema.optionalWith(Schema.String, { default: () => "" }),
  errors: Schema.optionalWith(Schema.Array(FaultItem), { default: () => [] })
})

/**
 * @since 0.1.0
 * @category models
 */
export type Fault = typeof Fault.Type

/**
 * Which endpoint answered; it decides what an ambiguous envelope means.
 *
 * @since 0.1.0
 * @category models
 */
export type Endpoint = "token" | "api" | "deauthorize" | "revoke" | "subscriptions"

/**
 * The refresh token or the authorization code is invalid, expired, used or revoked. Permanent: the
 * athlete has to log in again.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidGrant extends Schema.TaggedError<InvalidGrant>()("InvalidGrant", {
  grant: Schema.Literal("authorization_code", "refresh_token"),
  status: Schema.Number,
  resource: Schema.String,
  field: Schema.String,
  code: Schema.String
}) {
  /** @since 0.1.0 */
  get transient(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return this.grant === "refresh_token"
      ? `Strava rejected the refresh token (${this.status} ${this.resource}/${this.code}): the grant was revoked, ` +
        "superseded or has expired. Log in again (strava-auth login)."
      : `Strava rejected the authorization code (${this.status} ${this.resource}/${this.code}): codes are ` +
        "single-use and short-lived. Start the login again and exchange the new code at once."
  }
}

/**
 * Strava does not accept the client id or secret. Permanent until the configuration is fixed; the grant
 * itself is kept.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidClient extends Schema.TaggedError<InvalidClient>()("InvalidClient", {
  status: Schema.Number,
  field: Schema.String,
  code: Schema.String
}) {
  /** @since 0.1.0 */
  get transient(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    const which = this.field === "client_id" ? "client id" : "client id or client secret"
    return `Strava rejected the application's ${which} (${this.status} Application/${
      this.field || "-"
    }/${this.code}). ` +
      "Check STRAVA_CLIENT_ID and STRAVA_CLIENT_SECRET against https://www.strava.com/settings/api."
  }
}

/**
 * The application is inactive (since 2026-06-30, an app whose owner has no subscription). Permanent until
 * the owner acts; the grant is kept.
 *
 * @since 0.1.0
 * @category errors
 */
export class AppInactive extends Schema.TaggedError<AppInactive>()("AppInactive", {
  status: Schema.Number
}) {
  /** @since 0.1.0 */
  get transient(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return `Strava reports the application as inactive (${this.status} Application/Status/Inactive). The app's ` +
      "owner must reactivate it (subscription) at https://www.strava.com/settings/api; tokens are kept meanwhile."
  }
}

/**
 * The token lacks a scope the endpoint needs (Strava answers 401, not 403).
 *
 * @since 0.1.0
 * @category errors
 */
export class MissingScope extends Schema.TaggedError<MissingScope>()("MissingScope", {
  status: Schema.Number,
  scope: Schema.String
}) {
  /** @since 0.1.0 */
  get transient(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return `The token lacks the ${this.scope} scope this request needs. Log in again asking for ${this.scope} ` +
      "and leave it ticked on Strava's authorize page."
  }
}

/**
 * The access token is expired, revoked or unknown to Strava.
 *
 * @since 0.1.0
 * @category errors
 */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  status: Schema.Number,
  resource: Schema.String,
  field: Schema.String,
  code: Schema.String
}) {
  /** @since 0.1.0 */
  get transient(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return `Strava did not accept the access token (${this.status} ${this.resource || "-"}/${this.field || "-"}/` +
      `${this.code || "-"}). Refresh it; if that fails too, log in again.`
  }
}

const WindowSchema = Schema.Struct({ fifteenMinutes: Schema.Number, daily: Schema.Number })

/**
 * Over Strava's rate limit. Transient: wait until `retryAt` (epoch milliseconds).
 *
 * @since 0.1.0
 * @category errors
 */
export class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", {
  status: Schema.Number,
  limit: Schema.OptionFromSelf(WindowSchema),
  usage: Schema.OptionFromSelf(WindowSchema),
  readLimit: Schema.OptionFromSelf(WindowSchema),
  readUsage: Schema.OptionFromSelf(WindowSchema),
  retryAt: Schema.Number
}) {
  /** @since 0.1.0 */
  get transient(): boolean {
    return true
  }
  /** @since 0.1.0 */
  override get message(): string {
    const show = (w: Option.Option<{ fifteenMinutes: number; daily: number }>) =>
      Option.match(w, { onNone: () => "?", onSome: (v) => `${v.fifteenMinutes},${v.daily}` })
    return `Strava's rate limit is exceeded (usage ${show(this.usage)} of ${show(this.limit)}, read ` +
      `${show(this.readUsage)} of ${show(this.readLimit)}). Retry after ${new Date(this.retryAt).toISOString()}.`
  }
}

/**
 * Strava answered 5xx (often with an HTML page). Transient.
 *
 * @since 0.1.0
 * @category errors
 */
export class ServerError extends Schema.TaggedError<ServerError>()("ServerError", {
  status: Schema.Number
}) {
  /** @since 0.1.0 */
  get transient(): boolean {
    return true
  }
  /** @since 0.1.0 */
  override get message(): string {
    return `Strava answered ${this.status}: a server-side problem. Retry later; the current token stays usable ` +
      "until it expires."
  }
}

/**
 * Strava could not be reached, or did not answer in time. Transient.
 *
 * @since 0.1.0
 * @category errors
 */
export class TransportError extends Schema.TaggedError<TransportError>()("TransportError", {
  reason: Schema.Literal("Transport", "Timeout"),
  detail: Schema.String
}) {
  /** @since 0.1.0 */
  get transient(): boolean {
    return true
  }
  /** @since 0.1.0 */
  override get message(): string {
    return this.reason === "Timeout"
      ? `Strava did not answer in time (${this.detail}). Retry later; check the network if it persists.`
      : `Could not reach Strava (${this.detail}). Check the network, proxy and STRAVA_BASE_URL/STRAVA_API_URL.`
  }
}

/**
 * A response that is not what Strava sends: an undecodable body (transient, as Strava's edge sometimes
 * answers garbage), a body larger than `maxBodyBytes` (transient for the same reason: what answered was
 * not Strava's API but maybe a proxy's or portal's page, which goes away; the read stops at the limit, so
 * a retry costs little), or a status this library does not know (permanent).
 *
 * @since 0.1.0
 * @category errors
 */
export class UnexpectedResponse extends Schema.TaggedError<UnexpectedResponse>()("UnexpectedResponse", {
  status: Schema.Number,
  reason: Schema.Literal("Decode", "Status", "TooLarge"),
  detail: Schema.String
}) {
  /** @since 0.1.0 */
  get transient(): boolean {
    return this.reason !== "Status"
  }
  /** @since 0.1.0 */
  override get message(): string {
    switch (this.reason) {
      case "Decode":
        return `Strava's ${this.status} response could not be decoded (${this.detail}). Retry later.`
      case "TooLarge":
        return `Strava's ${this.status} response is too large (${this.detail}); Strava's answers are a few KB, ` +
          "so this is not Strava's API: check STRAVA_BASE_URL/STRAVA_API_URL and any proxy. Retry later."
      case "Status":
        return `Strava answered an unexpected ${this.status} (${this.detail}). Check the request; report it if ` +
          "it persists."
    }
  }
}

/**
 * The most bytes read from a response of Strava's OAuth endpoints (a token answer is under 2 KB).
 *
 * @since 0.2.0
 * @category constants
 */
export const maxBodyBytes = 64 * 1024

/**
 * The longest server-provided text kept in an error.
 *
 * @since 0.2.0
 * @category constants
 */
export const maxServerText = 200

/**
 * A body that went over `limit` bytes (the read stopped there).
 *
 * @since 0.2.0
 * @category constructors
 */
export const tooLarge = (status: number, limit: number = maxBodyBytes): UnexpectedResponse =>
  new UnexpectedResponse({ status, reason: "TooLarge", detail: `more than ${limit} bytes` })

/**
 * The forms a secret may take when a server echoes it: as sent, percent-encoded, form-encoded.
 *
 * @since 0.2.0
 * @category scrubbing
 */
export const secretForms = (secret: Redacted.Redacted<string> | string): ReadonlyArray<string> => {
  const value = Redacted.isRedacted(secret) ? Redacted.value(secret) : secret
  if (value === "") return []
  return Array.from(new Set([value, encodeURIComponent(value), new URLSearchParams({ v: value }).toString().slice(2)]))
}

/**
 * The value of the `Authorization: Basic` header of `clientId:clientSecret` (what `/oauth/revoke` is sent),
 * to scrub along with the secret itself.
 *
 * @since 0.2.0
 * @category scrubbing
 */
export const basicCredential = (clientId: string, clientSecret: Redacted.Redacted<string>): Redacted.Redacted<string> =>
  Redacted.make(Encoding.encodeBase64(`${clientId}:${Redacted.value(clientSecret)}`))

/**
 * Makes server-provided text fit for an error or a log line: every known secret (as sent, percent- or
 * form-encoded) becomes `[redacted]`, control characters become spaces (no forged log lines, no terminal
 * escapes), and the result is at most `maxServerText` characters.
 *
 * @since 0.2.0
 * @category scrubbing
 */
export const scrub = (text: string, secrets: ReadonlyArray<Redacted.Redacted<string> | string> = []): string => {
  let out = text
  // Longest first, so a secret that contains another is replaced whole.
  const forms = secrets.flatMap(secretForms).sort((a, b) => b.length - a.length)
  for (const form of forms) out = out.split(form).join("[redacted]")

  out = out.replace(/[\u0000-\u001f\u007f-\u009f]/g, " ")
  return out.length > maxServerText ? `${out.slice(0, maxServerText - 1)}…` : out
}

/**
 * Every failure of a call to Strava.
 *
 * @since 0.1.0
 * @category errors
 */
export type StravaError =
  | InvalidGrant
  | InvalidClient
  | AppInactive
  | MissingScope
  | Unauthorized
  | RateLimited
  | ServerError
  | TransportError
  | UnexpectedResponse

/**
 * Whether a failure is worth retrying with the same grant.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isTransient = (error: { readonly transient?: boolean | undefined }): boolean => error.transient === true

const decodeFault = Schema.decodeUnknownOption(Schema.parseJson(Fault))

/**
 * Parses an envelope; `None` when the body is not one (HTML, empty, truncated).
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseFault = (body: string): Option.Option<Fault> => decodeFault(body)

const is = (value: string, expected: string) => value.toLowerCase() === expected.toLowerCase()

/**
 * Classifies a non-2xx response.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromResponse = (options: {
  readonly endpoint: Endpoint
  readonly status: number
  readonly headers: Readonly<Record<string, string | undefined>>
  readonly body: string
  readonly nowMillis: number
  /**
   * What the request carried that must never be shown (the client secret, the token or code sent):
   * scrubbed from every text of the server's that goes into the error.
   */
  readonly secrets?: ReadonlyArray<Redacted.Redacted<string> | string> | undefined
}): StravaError => {
  const { endpoint, status } = options
  if (status === 429) {
    const limits = RateLimit.fromHeaders(options.headers)
    return new RateLimited({ status, ...limits, retryAt: RateLimit.resetsAt(limits, options.nowMillis) })
  }
  if (status >= 500) return new ServerError({ status })
  const clean = (text: string) => scrub(text, options.secrets)
  const fault = Option.map(parseFault(options.body), (f) => ({
    message: clean(f.message),
    errors: f.errors.map((i) => ({ resource: clean(i.resource), field: clean(i.field), code: clean(i.code) }))
  }))
  const items = Option.match(fault, { onNone: () => [], onSome: (f) => f.errors })
  const find = (resource: string) => items.find((item) => is(item.resource, resource))

  const inactive = items.find((i) => is(i.resource, "Application") && is(i.field, "Status") && is(i.code, "Inactive"))
  if (inactive !== undefined) return new AppInactive({ status })

  const refreshToken = find("RefreshToken")
  if (refreshToken !== undefined) return new InvalidGrant({ grant: "refresh_token", status, ...refreshToken })
  const code = find("RequestToken") ?? find("AuthorizationCode")
  if (code !== undefined) return new InvalidGrant({ grant: "authorization_code", status, ...code })

  const scope = items.find((i) => is(i.resource, "AccessToken") && is(i.code, "missing"))
  if (scope !== undefined) return new MissingScope({ status, scope: scope.field.replace(/_permission$/, "") })

  const application = find("Application")
  if (application !== undefined) {
    // On the token, revoke and push-subscription endpoints (which take the app's id and secret)
    // `Application` means our credentials; on the API it means the bearer token is not one Strava issued.
    if (
      endpoint === "token" || endpoint === "revoke" || endpoint === "subscriptions" ||
      is(application.field, "client_id")
    ) {
      return new InvalidClient({ status, field: application.field, code: application.code })
    }
    return new Unauthorized({ status, ...application })
  }
  const athlete = find("Athlete")
  if (athlete !== undefined || status === 401) {
    return new Unauthorized({
      status,
      resource: athlete?.resource ?? "",
      field: athlete?.field ?? "",
      code: athlete?.code ?? ""
    })
  }
  const described = Option.match(fault, {
    onNone: () => "no error envelope",
    onSome: (f) =>
      clean(
        [f.message, ...f.errors.map((i) => `${i.resource}/${i.field}/${i.code}`)].filter((s) => s !== "").join(" ")
      )
  })
  return new UnexpectedResponse({ status, reason: "Status", detail: described })
}

/**
 * The paths a decoding failure names, each once, in order (`athlete.id`, `expires_at`); `root` stands for
 * the value as a whole (not JSON, not an object). Never the values, which may be tokens: for any message
 * about a Schema failure on outside data (Strava's answers, token files).
 *
 * @since 0.2.0
 * @category formatting
 */
export const fieldPaths = (error: ParseResult.ParseError, root = "(body)"): ReadonlyArray<string> =>
  Array.from(
    new Set(
      ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) =>
        issue.path.length === 0 ? root : issue.path.map(String).join(".")
      )
    )
  )

/**
 * Describes a decoding failure by the paths that failed only, never the values (which may be tokens).
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromParseError = (status: number, error: ParseResult.ParseError): UnexpectedResponse =>
  new UnexpectedResponse({ status, reason: "Decode", detail: `invalid or missing: ${fieldPaths(error).join(", ")}` })
