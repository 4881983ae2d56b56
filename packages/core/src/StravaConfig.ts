/**
 * Who the app is to Strava and where Strava is.
 *
 * From the environment (`fromEnv`):
 *
 * | variable | meaning | default |
 * |---|---|---|
 * | `STRAVA_CLIENT_ID` | the app's numeric Client ID | required |
 * | `STRAVA_CLIENT_SECRET` | its Client Secret | required, unless the next is set |
 * | `STRAVA_CLIENT_SECRET_FILE` | a file holding the secret (trailing newline ignored) | |
 * | `STRAVA_BASE_URL` | Strava's web origin | `https://www.strava.com` |
 * | `STRAVA_API_URL` | the API base (moves to `https://www.api-v3.strava.com` in 2027) | `https://www.strava.com/api/v3` |
 *
 * The secret is `Redacted` from the moment it is read. A base URL with a user name or password in it
 * (`http://user:pass@host`) is refused: it would be printed in the authorize URL and in messages.
 *
 * @since 0.1.0
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"

/**
 * @since 0.1.0
 * @category models
 */
export interface StravaConfigShape {
  readonly clientId: string
  readonly clientSecret: Redacted.Redacted<string>
  readonly baseUrl: string
  readonly apiUrl: string
  /** Per attempt. Default 10 seconds. */
  readonly timeout: Duration.Duration
  /** Extra attempts after a transient failure (never after a 429). Default 2. */
  readonly retries: number
}

/**
 * @since 0.1.0
 * @category tags
 */
export class StravaConfig extends Context.Tag("@strava-auth/core/StravaConfig")<StravaConfig, StravaConfigShape>() {}

/**
 * Strava's web origin (authorize page and `/oauth/*`). The one definition in core and the daemon; the mock
 * (`@strava-auth/testing`) keeps its own, as it imports nothing from core.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultBaseUrl = "https://www.strava.com"

/**
 * Strava's API base until 2027-06-01 (then `https://www.api-v3.strava.com`; see docs/STRAVA.md).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultApiUrl = "https://www.strava.com/api/v3"

/**
 * @since 0.1.0
 * @category models
 */
export interface Input {
  readonly clientId: string | number
  readonly clientSecret: Redacted.Redacted<string> | string
  readonly baseUrl?: string | undefined
  readonly apiUrl?: string | undefined
  readonly timeout?: Duration.DurationInput | undefined
  readonly retries?: number | undefined
}

const trimSlash = (url: string) => url.replace(/\/+$/, "")

/**
 * Builds a config from values (a plain string secret is wrapped in `Redacted`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (input: Input): StravaConfigShape => ({
  clientId: String(input.clientId),
  clientSecret: Redacted.isRedacted(input.clientSecret) ? input.clientSecret : Redacted.make(input.clientSecret),
  baseUrl: trimSlash(input.baseUrl ?? defaultBaseUrl),
  apiUrl: trimSlash(input.apiUrl ?? defaultApiUrl),
  timeout: Duration.decode(input.timeout ?? "10 seconds"),
  retries: input.retries ?? 2
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (input: Input): Layer.Layer<StravaConfig> => Layer.succeed(StravaConfig, make(input))

/**
 * Checks a client id (Strava's are integers): the trimmed id, or a message that names `source` (the
 * variable or flag it came from) and says what to do. The value is not echoed: a secret pasted into the
 * wrong variable must not end up on stderr.
 *
 * @since 0.2.0
 * @category validation
 */
export const validateClientId = (value: string, source = "STRAVA_CLIENT_ID"): Either.Either<string, string> => {
  const id = value.trim()
  return /^\d+$/.test(id)
    ? Either.right(id)
    : Either.left(`${source} must be the numeric Client ID shown at https://www.strava.com/settings/api.`)
}

// `//user:pass@` becomes `//[redacted]@`, so a refused URL can be shown without its credentials.
const withoutUserinfo = (url: string) => url.replace(/\/\/[^/?#]*@/, "//[redacted]@")

/**
 * Checks a configured base URL: `http(s)://`, no spaces, and no user name or password (a URL's userinfo
 * would be printed in the authorize URL and in error messages, and Strava needs none). Returns the URL
 * without trailing slashes, or a message naming `source` (the variable or flag) that never shows the
 * userinfo.
 *
 * @since 0.2.0
 * @category validation
 */
export const validateUrl = (value: string, source: string, example: string): Either.Either<string, string> => {
  let parsed: URL | undefined
  try {
    parsed = /^https?:\/\/\S+$/.test(value) ? new URL(value) : undefined
  } catch {
    parsed = undefined
  }
  if (parsed === undefined) {
    return Either.left(`${source} must be an http(s) URL such as ${example}; got "${withoutUserinfo(value)}".`)
  }
  if (parsed.username !== "" || parsed.password !== "") {
    return Either.left(
      `${source} must not contain a user name or password ("user:pass@"): it would be shown in the authorize ` +
        `URL and in messages, and Strava needs none. Use ${withoutUserinfo(value).replace("[redacted]@", "")}.`
    )
  }
  return Either.right(trimSlash(value))
}

/**
 * `STRAVA_CLIENT_ID`: Strava's client ids are integers.
 *
 * @since 0.1.0
 * @category config
 */
export const clientId: Config.Config<string> = Config.string("STRAVA_CLIENT_ID").pipe(
  Config.mapOrFail((s) => Either.mapLeft(validateClientId(s), (message) => ConfigError.InvalidData([], message)))
)

const url = (name: string, fallback: string): Config.Config<string> =>
  Config.string(name).pipe(
    Config.withDefault(fallback),
    Config.mapOrFail((s) =>
      Either.mapLeft(validateUrl(s, name, fallback), (message) => ConfigError.InvalidData([], message))
    )
  )

/**
 * `STRAVA_BASE_URL`.
 *
 * @since 0.1.0
 * @category config
 */
export const baseUrl: Config.Config<string> = url("STRAVA_BASE_URL", defaultBaseUrl)

/**
 * `STRAVA_API_URL`.
 *
 * @since 0.1.0
 * @category config
 */
export const apiUrl: Config.Config<string> = url("STRAVA_API_URL", defaultApiUrl)

/**
 * Reads a secret from a file: the whole content, without its trailing newline. An empty file is an error.
 *
 * @since 0.1.0
 * @category config
 */
export const readSecretFile = (
  path: string,
  variable: string
): Effect.Effect<Redacted.Redacted<string>, ConfigError.ConfigError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const content = yield* fs.readFileString(path).pipe(
      Effect.mapError((error) =>
        ConfigError.InvalidData(
          [variable],
          `${variable} names ${path}, which cannot be read (${
            error._tag === "SystemError" ? error.reason : error._tag
          }). Point it at a readable file holding the client secret.`
        )
      )
    )
    const secret = content.replace(/\r?\n$/, "")
    if (secret.trim() === "") {
      return yield* Effect.fail(
        ConfigError.InvalidData([variable], `${variable} names ${path}, which is empty. Put the client secret in it.`)
      )
    }
    return Redacted.make(secret)
  })

/**
 * The client secret: `STRAVA_CLIENT_SECRET`, else the file named by `STRAVA_CLIENT_SECRET_FILE`.
 *
 * @since 0.1.0
 * @category config
 */
export const clientSecret: Effect.Effect<Redacted.Redacted<string>, ConfigError.ConfigError, FileSystem.FileSystem> =
  Effect.gen(function*() {
    const direct = yield* Config.option(Config.redacted("STRAVA_CLIENT_SECRET"))
    if (Option.isSome(direct) && Redacted.value(direct.value) !== "") return direct.value
    const file = yield* Config.option(Config.string("STRAVA_CLIENT_SECRET_FILE"))
    if (Option.isSome(file)) return yield* readSecretFile(file.value, "STRAVA_CLIENT_SECRET_FILE")
    return yield* Effect.fail(
      ConfigError.MissingData(
        ["STRAVA_CLIENT_SECRET"],
        "Set STRAVA_CLIENT_SECRET, or STRAVA_CLIENT_SECRET_FILE to a file holding it " +
          "(the Client Secret at https://www.strava.com/settings/api)."
      )
    )
  })

/**
 * The whole config from the environment (or whatever `ConfigProvider` is installed).
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromEnv: Effect.Effect<StravaConfigShape, ConfigError.ConfigError, FileSystem.FileSystem> = Effect.gen(
  function*() {
    const id = yield* clientId
    const secret = yield* clientSecret
    return make({ clientId: id, clientSecret: secret, baseUrl: yield* baseUrl, apiUrl: yield* apiUrl })
  }
)

/**
 * @since 0.1.0
 * @category layers
 */
export const layerFromEnv: Layer.Layer<StravaConfig, ConfigError.ConfigError, FileSystem.FileSystem> = Layer.effect(
  StravaConfig,
  fromEnv
)

/**
 * The longest duration any setting takes (a year); a longer one is not a duration anyone means.
 *
 * @since 0.3.0
 * @category parsing
 */
export const maxDuration: Duration.Duration = Duration.days(366)

/**
 * `90`, `90s`, `45m`, `6h`, `1d`, `45 minutes`, `1500 millis`: a duration, or `None` (also for anything beyond
 * `maxDuration`).
 *
 * @since 0.3.0
 * @category parsing
 */
export const parseDuration = (input: string): Option.Option<Duration.Duration> =>
  Option.filter(parseAnyDuration(input), (d) => Duration.lessThanOrEqualTo(d, maxDuration))

const parseAnyDuration = (input: string): Option.Option<Duration.Duration> => {
  const match =
    /^\s*(\d+(?:\.\d+)?)\s*(ms|millis|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hours?|d|days?)?\s*$/i.exec(
      input
    )
  if (match === null) return Option.none()
  const n = Number(match[1])
  const unit = (match[2] ?? "s").toLowerCase()
  if (unit === "ms" || unit.startsWith("milli")) return Option.some(Duration.millis(n))
  if (unit.startsWith("s")) return Option.some(Duration.seconds(n))
  if (unit.startsWith("m")) return Option.some(Duration.minutes(n))
  if (unit.startsWith("h")) return Option.some(Duration.hours(n))
  return Option.some(Duration.days(n))
}
