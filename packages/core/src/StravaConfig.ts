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
 * The secret is `Redacted` from the moment it is read.
 *
 * @since 0.1.0
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
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
 * @since 0.1.0
 * @category constants
 */
export const defaultBaseUrl = "https://www.strava.com"

/**
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
 * `STRAVA_CLIENT_ID`: Strava's client ids are integers.
 *
 * @since 0.1.0
 * @category config
 */
export const clientId: Config.Config<string> = Config.string("STRAVA_CLIENT_ID").pipe(
  Config.map((s) => s.trim()),
  Config.validate({
    message: "STRAVA_CLIENT_ID must be the numeric Client ID shown at https://www.strava.com/settings/api",
    validation: (s) => /^\d+$/.test(s)
  })
)

const url = (name: string, fallback: string): Config.Config<string> =>
  Config.string(name).pipe(
    Config.withDefault(fallback),
    Config.validate({
      message: `${name} must be an http(s) URL such as ${fallback}`,
      validation: (s) => /^https?:\/\/[^\s]+$/.test(s)
    }),
    Config.map(trimSlash)
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
