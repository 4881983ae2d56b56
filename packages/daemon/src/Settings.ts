/**
 * The daemon's settings: a flag wins over the environment, which wins over the default.
 *
 * | environment | flag | default |
 * |---|---|---|
 * | `STRAVA_CLIENT_ID` | `--client-id` | required for login and refresh |
 * | `STRAVA_CLIENT_SECRET`, `STRAVA_CLIENT_SECRET_FILE`, `$CREDENTIALS_DIRECTORY/strava-client-secret` | none (argv is visible to every user) | required for login and refresh |
 * | `STRAVA_AUTH_TOKEN_FILE` | `--token-file` | see `Paths.defaultTokenFile` (the account `default`'s) |
 * | `STRAVA_AUTH_ACCOUNT` | `--account` | `default` (see `Accounts`) |
 * | none | `--client-secret-file` (login) | the account's settings, else the variables above |
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
import * as Fs from "node:fs"
import * as Path from "node:path"

import * as FileSystem from "@effect/platform/FileSystem"
import { StravaConfig, TokenSource } from "@strava-auth/core"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

import * as Accounts from "./Accounts.js"
import { ConfigurationError, describeConfigError, UsageError } from "./DaemonError.js"
import * as Paths from "./Paths.js"
import * as PrivateDirectory from "./PrivateDirectory.js"

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
  readonly account: Option.Option<string>
  readonly clientSecretFile: Option.Option<string>
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
  apiUrl: Option.none(),
  account: Option.none(),
  clientSecretFile: Option.none()
}

/**
 * The paths and timing every command needs.
 *
 * @since 0.1.0
 * @category models
 */
export interface Local {
  /** The account the command acts on (`default` unless named). */
  readonly account: string
  /** That account's token file. */
  readonly tokenFile: string
  /** The account `default`'s token file: every other account's files are beside it (`Accounts`). */
  readonly defaultTokenFile: string
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
 * The account a command acts on: `--account`, else `STRAVA_AUTH_ACCOUNT`, else `default`.
 *
 * @since 0.3.0
 * @category resolving
 */
export const accountOf = (flags: Flags) =>
  Effect.flatMap(pick(flags.account, "STRAVA_AUTH_ACCOUNT"), (name) =>
    Option.match(name, {
      onNone: () => Effect.succeed(Accounts.defaultName),
      onSome: (value) =>
        Effect.suspend(() => {
          const detail = Accounts.problem(value, Option.isSome(flags.account) ? "--account" : "STRAVA_AUTH_ACCOUNT")
          if (detail === undefined) return Effect.succeed(value)
          return Effect.fail(
            Option.isSome(flags.account) ? new UsageError({ detail }) : new ConfigurationError({ detail })
          )
        })
    }))

/**
 * Resolves the account, its token file, the socket and the margin.
 *
 * @since 0.1.0
 * @category resolving
 */
export const local = (flags: Flags, environment: Paths.Environment = Paths.current()) =>
  Effect.gen(function*() {
    const defaultTokenFile = Option.getOrElse(
      yield* pick(flags.tokenFile, "STRAVA_AUTH_TOKEN_FILE"),
      () => Paths.defaultTokenFile(environment)
    )
    const account = yield* accountOf(flags)
    const tokenFile = Accounts.tokenFileOf(defaultTokenFile, account)
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
    return { account, tokenFile, defaultTokenFile, socket, margin } satisfies Local
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
 * The full Strava config for the commands that talk to Strava, for the account the flags name: the client id
 * from `--client-id`, else the account's own app (`readAccountSettings`), else `STRAVA_CLIENT_ID`; the secret
 * from `--client-secret-file`, else the account's app's secret file, else `clientSecret`.
 *
 * @since 0.1.0
 * @category resolving
 */
export const strava = (
  flags: Flags,
  environment: Paths.Environment = Paths.current()
): Effect.Effect<StravaConfig.StravaConfigShape, ConfigurationError | UsageError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const where = yield* local(flags, environment)
    const own = yield* readAccountSettings(where.defaultTokenFile, where.account)
    const id = Option.isSome(flags.clientId)
      ? flags.clientId
      : Option.isSome(own)
      ? Option.some(own.value.clientId)
      : yield* fromEnv("STRAVA_CLIENT_ID")
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
    const secretFile: Option.Option<readonly [string, string]> = Option.isSome(flags.clientSecretFile)
      ? Option.some([flags.clientSecretFile.value, "--client-secret-file"] as const)
      : Option.map(own, (o) =>
        [
          o.clientSecretFile,
          `client_secret_file in ${Accounts.settingsFileOf(where.defaultTokenFile, where.account)}`
        ] as const)
    const secret = Option.isSome(secretFile)
      ? yield* StravaConfig.readSecretFile(secretFile.value[0], secretFile.value[1])
      : yield* clientSecret(environment)
    return StravaConfig.make({ clientId, clientSecret: secret, baseUrl, apiUrl, retries: 0 })
  }).pipe(Effect.catchTag("ConfigError", (e) => new ConfigurationError({ detail: describeConfigError(e) })))

/**
 * An account's own app: its client id and its secret's file.
 *
 * @since 0.3.0
 * @category models
 */
export interface AppSettings {
  readonly clientId: string
  readonly clientSecretFile: string
}

const SettingsJson = Schema.Struct({
  version: Schema.Literal(1),
  client_id: Schema.String,
  client_secret_file: Schema.String
})
const decodeSettings = Schema.decodeUnknownEither(Schema.parseJson(SettingsJson))

/**
 * An account's settings, when it has its own app; a settings file that cannot be read or parsed is a
 * configuration error naming it.
 *
 * @since 0.3.0
 * @category reading
 */
export const readAccountSettings = (
  defaultTokenFile: string,
  name: string
): Effect.Effect<Option.Option<AppSettings>, ConfigurationError> =>
  Effect.suspend(() => {
    const path = Accounts.settingsFileOf(defaultTokenFile, name)
    let text: string
    try {
      text = Fs.readFileSync(path, "utf8")
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return Effect.succeed(Option.none())
      return Effect.fail(
        new ConfigurationError({ detail: `cannot read ${path}: ${(error as Error).message}.` })
      )
    }
    return Either.match(decodeSettings(text), {
      onLeft: () =>
        Effect.fail(
          new ConfigurationError({
            detail: `${path} is not an account's settings file (version, client_id, client_secret_file). Log ` +
              `in again with \`strava-auth login --account ${name} --client-id ID --client-secret-file PATH\`.`
          })
        ),
      onRight: (s) => Effect.succeed(Option.some({ clientId: s.client_id, clientSecretFile: s.client_secret_file }))
    })
  })

/**
 * Remembers an account's own app (atomically, 0600, in the 0700 accounts directory).
 *
 * @since 0.3.0
 * @category writing
 */
export const writeAccountSettings = (
  defaultTokenFile: string,
  name: string,
  settings: AppSettings
): Effect.Effect<void, ConfigurationError> =>
  Effect.gen(function*() {
    const dir = Accounts.directoryOf(defaultTokenFile)
    yield* PrivateDirectory.ensure(Path.dirname(dir), "token file").pipe(
      Effect.zipRight(PrivateDirectory.ensure(dir, "token file")),
      Effect.mapError((e) => new ConfigurationError({ detail: e.detail }))
    )
    const path = Accounts.settingsFileOf(defaultTokenFile, name)
    const text = `${
      JSON.stringify(
        {
          version: 1,
          client_id: settings.clientId,
          client_secret_file: settings.clientSecretFile
        } satisfies typeof SettingsJson.Type
      )
    }\n`
    yield* Effect.try({
      try: () => {
        const tmp = `${path}.tmp-${process.pid}`
        const fd = Fs.openSync(tmp, "w", 0o600)
        try {
          Fs.writeSync(fd, text)
          Fs.fsyncSync(fd)
        } finally {
          Fs.closeSync(fd)
        }
        Fs.renameSync(tmp, path)
      },
      catch: (error) => new ConfigurationError({ detail: `cannot write ${path}: ${(error as Error).message}.` })
    })
  })

/**
 * Forgets an account's own app (its settings file), when it has one.
 *
 * @since 0.3.0
 * @category writing
 */
export const removeAccountSettings = (
  defaultTokenFile: string,
  name: string
): Effect.Effect<void, ConfigurationError> =>
  Effect.try({
    try: () => Fs.rmSync(Accounts.settingsFileOf(defaultTokenFile, name), { force: true }),
    catch: (error) =>
      new ConfigurationError({
        detail: `cannot remove ${Accounts.settingsFileOf(defaultTokenFile, name)}: ${(error as Error).message}.`
      })
  })
