/**
 * The daemon's settings: a flag wins over the environment, which wins over the default.
 *
 * | environment | flag | default |
 * |---|---|---|
 * | `STRAVA_CLIENT_ID` | `--client-id` | required for login and refresh |
 * | `STRAVA_CLIENT_SECRET`, `STRAVA_CLIENT_SECRET_FILE`, `$CREDENTIALS_DIRECTORY/strava-client-secret` | none (argv is visible to every user) | required for login and refresh |
 * | `STRAVA_AUTH_TOKEN_FILE` | `--token-file` | see `Paths.defaultTokenFile` |
 * | `STRAVA_AUTH_SOCKET` | `--socket` | see `Paths.defaultSocket` |
 * | `STRAVA_AUTH_REFRESH_MARGIN` | `--refresh-margin` | 45 minutes |
 * | `STRAVA_BASE_URL`, `STRAVA_API_URL` | `--strava-url`, `--api-url` | Strava's |
 * | `STRAVA_AUTH_LOG_FORMAT` | `--log-format` | `logfmt` |
 *
 * The client id and URL checks are core's (`StravaConfig.validateClientId`, `StravaConfig.validateUrl`),
 * so the command and an app reading `StravaConfig.fromEnv` accept and refuse the same values.
 *
 * @internal The command's own configuration, not part of `@strava-auth/daemon`'s entry.
 * @since 0.1.0
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { StravaConfig, TokenSource } from "@strava-auth/core"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"

import { ConfigurationError, describeConfigError } from "./DaemonError.js"
import * as Paths from "./Paths.js"

/**
 * The longest refresh margin: a Strava access token lives six hours.
 *
 * @since 0.2.0
 * @category parsing
 */
export const maxMargin: Duration.Duration = Duration.hours(6)

const { maxDuration, parseDuration } = StravaConfig

export {
  /**
   * The longest duration any setting takes (a year). One definition, in core.
   *
   * @since 0.2.0
   * @category parsing
   */
  maxDuration,
  /**
   * `90`, `90s`, `45m`, `6h`, `1d`: a duration, or `None`. One definition, in core.
   *
   * @since 0.1.0
   * @category parsing
   */
  parseDuration
}

/**
 * What the command line said (each `None` falls back to the environment, then the default).
 *
 * @since 0.1.0
 * @category models
 */
export interface Flags {
  readonly clientId: Option.Option<string>
  readonly tokenFile: Option.Option<string>
  readonly socket: Option.Option<string>
  readonly refreshMargin: Option.Option<string>
  readonly stravaUrl: Option.Option<string>
  readonly apiUrl: Option.Option<string>
}

/**
 * @since 0.1.0
 * @category constants
 */
export const noFlags: Flags = {
  clientId: Option.none(),
  tokenFile: Option.none(),
  socket: Option.none(),
  refreshMargin: Option.none(),
  stravaUrl: Option.none(),
  apiUrl: Option.none()
}

/**
 * The paths and timing every command needs.
 *
 * @since 0.1.0
 * @category models
 */
export interface Local {
  readonly tokenFile: string
  readonly socket: string
  readonly margin: Duration.Duration
}

const fromEnv = (name: string) => Effect.map(Config.option(Config.string(name)), Option.filter((s) => s.trim() !== ""))

/**
 * A flag's value, else its variable's (unset or blank is absent).
 *
 * @since 0.2.0
 * @category resolving
 */
export const pick = (flag: Option.Option<string>, env: string) =>
  Option.isSome(flag) ? Effect.succeed(flag) : fromEnv(env)

/**
 * Resolves the token file, the socket and the margin.
 *
 * @since 0.1.0
 * @category resolving
 */
export const local = (flags: Flags, environment: Paths.Environment = Paths.current()) =>
  Effect.gen(function*() {
    const tokenFile = Option.getOrElse(
      yield* pick(flags.tokenFile, "STRAVA_AUTH_TOKEN_FILE"),
      () => Paths.defaultTokenFile(environment)
    )
    const socket = Option.getOrElse(yield* pick(flags.socket, "STRAVA_AUTH_SOCKET"), () =>
      Paths.defaultSocket(environment))
    if (Buffer.byteLength(socket) > 100) {
      return yield* new ConfigurationError({
        detail: `The socket path ${socket} is too long for a Unix socket (100 bytes at most). ` +
          "Set STRAVA_AUTH_SOCKET (or --socket) to a shorter path."
      })
    }
    const marginText = yield* pick(flags.refreshMargin, "STRAVA_AUTH_REFRESH_MARGIN")
    let margin = TokenSource.defaultMargin
    if (Option.isSome(marginText)) {
      const parsed = parseDuration(marginText.value)
      if (Option.isNone(parsed) || Duration.toMillis(parsed.value) <= 0) {
        return yield* new ConfigurationError({
          detail: `STRAVA_AUTH_REFRESH_MARGIN (or --refresh-margin) must be a positive duration such as 45m, ` +
            `90s or "45 minutes"; got "${marginText.value}".`
        })
      }
      if (Duration.greaterThan(parsed.value, maxMargin)) {
        return yield* new ConfigurationError({
          detail: `STRAVA_AUTH_REFRESH_MARGIN (or --refresh-margin) is at most 6h, the life of a Strava access ` +
            `token (a longer margin would make every token due at once); got "${marginText.value}".`
        })
      }
      margin = parsed.value
    }
    return { tokenFile, socket, margin } satisfies Local
  }).pipe(Effect.catchTag("ConfigError", (e) =>
    new ConfigurationError({ detail: describeConfigError(e) })))

/**
 * The client secret: `STRAVA_CLIENT_SECRET`, else the file in `STRAVA_CLIENT_SECRET_FILE`, else systemd's
 * credential `$CREDENTIALS_DIRECTORY/strava-client-secret`.
 *
 * @since 0.1.0
 * @category resolving
 */
export const clientSecret = (
  environment: Paths.Environment = Paths.current()
): Effect.Effect<Redacted.Redacted<string>, ConfigError.ConfigError, FileSystem.FileSystem> =>
  StravaConfig.clientSecret.pipe(Effect.catchIf(
    (e) => ConfigError.isMissingDataOnly(e),
    (missing) => {
      const credential = Paths.credentialFile(environment)
      if (credential === undefined) {
        return Effect.fail(
          ConfigError.MissingData(
            ["STRAVA_CLIENT_SECRET"],
            "STRAVA_CLIENT_SECRET is not set. Set it, or STRAVA_CLIENT_SECRET_FILE to a file holding it, or under " +
              "systemd LoadCredential=strava-client-secret:<file> (the Client Secret at " +
              "https://www.strava.com/settings/api). It is never taken as a flag: argv is visible to every user."
          )
        )
      }
      return Effect.flatMap(FileSystem.FileSystem, (fs) =>
        Effect.flatMap(
          fs.exists(credential).pipe(Effect.orElseSucceed(() => false)),
          (exists) =>
            exists
              ? StravaConfig.readSecretFile(credential, "CREDENTIALS_DIRECTORY/strava-client-secret")
              : Effect.fail(missing)
        ))
    }
  ))

/**
 * The full Strava config for the commands that talk to Strava.
 *
 * @since 0.1.0
 * @category resolving
 */
export const strava = (
  flags: Flags,
  environment: Paths.Environment = Paths.current()
): Effect.Effect<StravaConfig.StravaConfigShape, ConfigurationError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const id = yield* pick(flags.clientId, "STRAVA_CLIENT_ID")
    if (Option.isNone(id)) {
      return yield* new ConfigurationError({
        detail: "STRAVA_CLIENT_ID is not set. Set it (or pass --client-id) to your app's numeric Client ID from " +
          "https://www.strava.com/settings/api."
      })
    }
    const clientId = yield* Either.mapLeft(
      StravaConfig.validateClientId(id.value, "STRAVA_CLIENT_ID (or --client-id)"),
      (detail) => new ConfigurationError({ detail })
    )
    const url = (flag: Option.Option<string>, env: string, option: string, fallback: string) =>
      Effect.flatMap(pick(flag, env), (value) =>
        Either.mapLeft(
          StravaConfig.validateUrl(Option.getOrElse(value, () => fallback), `${env} (or ${option})`, fallback),
          (detail) => new ConfigurationError({ detail })
        ))
    const baseUrl = yield* url(flags.stravaUrl, "STRAVA_BASE_URL", "--strava-url", StravaConfig.defaultBaseUrl)
    const apiUrl = yield* url(flags.apiUrl, "STRAVA_API_URL", "--api-url", StravaConfig.defaultApiUrl)
    const secret = yield* clientSecret(environment)
    return StravaConfig.make({ clientId, clientSecret: secret, baseUrl, apiUrl, retries: 0 })
  }).pipe(Effect.catchTag("ConfigError", (e) => new ConfigurationError({ detail: describeConfigError(e) })))
