/**
 * Token sources for Effect apps on the same machine as the daemon, for core's authenticated `StravaClient`.
 *
 * Neither refreshes by itself: the daemon owns the grant, so an app can never race it over a rotated refresh
 * token. Both fail with core's typed errors: `LoginRequired` (no token, the grant is gone) and
 * `TokenUnavailable` (the daemon is down or has no valid token right now: try again).
 *
 * - `layerSocket(path)` asks the daemon's socket for each token; `invalidate` asks it to refresh
 *   (`POST /refresh`), which the daemon does single-flight.
 * - `layerFile(path)` reads the token file the daemon keeps current; a read happens only when the file
 *   changed (its stamp) or the cached token is expired.
 *
 * @since 0.1.0
 */
import * as FileSystem from "@effect/platform/FileSystem"
import type { Token } from "@strava-auth/core"
import { TokenSource } from "@strava-auth/core"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"

import * as Accounts from "./Accounts.js"
import * as SocketClient from "./SocketClient.js"
import * as TokenFile from "./TokenFile.js"
import * as Wire from "./Wire.js"

const fromReply = (reply: SocketClient.Reply, socketPath: string) => {
  if (reply._tag === "Down") {
    return Effect.fail(
      new TokenSource.TokenUnavailable({
        reason: `the strava-auth daemon does not answer on ${socketPath} (${reply.reason}). Is it running?`
      })
    )
  }
  const token = reply.status === 200 ? Wire.decodeTokenJson(reply.body) : Option.none()
  return Option.isSome(token)
    ? Effect.succeed(Redacted.make(token.value.access_token))
    : Effect.fail(SocketClient.errorOf(reply.status, reply.body))
}

/**
 * Asks the daemon's socket, for the account `default` or the one named (`?account=NAME`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeSocket = (
  socketPath: string,
  options: { readonly account?: string | undefined } = {}
): TokenSource.TokenSourceShape => {
  const account = options.account ?? Accounts.defaultName
  const ask = (method: "GET" | "POST", path: string, timeoutMillis?: number) =>
    Effect.flatMap(
      SocketClient.request(socketPath, method, path, timeoutMillis).pipe(
        // an untrusted socket (SocketClient): no token from it, and the reason for the app's log
        Effect.catchTag(
          "ConfigurationError",
          (e) => Effect.fail(new TokenSource.TokenUnavailable({ reason: e.detail }))
        )
      ),
      (reply) => fromReply(reply, socketPath)
    )
  const get = ask("GET", Accounts.socketPath("/token.json", account))
  return {
    get,
    invalidate: (rejected) =>
      Effect.flatMap(get, (current) =>
        Redacted.value(current) !== Redacted.value(rejected)
          ? Effect.succeed(current)
          : ask("POST", Accounts.socketPath("/refresh", account), 30_000))
  }
}

/**
 * @since 0.1.0
 * @category layers
 */
export const layerSocket = (
  socketPath: string,
  options: { readonly account?: string | undefined } = {}
): Layer.Layer<TokenSource.TokenSource> => Layer.succeed(TokenSource.TokenSource, makeSocket(socketPath, options))

/**
 * Reads the daemon's token file.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeFile = (path: string): Effect.Effect<TokenSource.TokenSourceShape, never, FileSystem.FileSystem> =>
  Effect.map(FileSystem.FileSystem, (fs) => {
    let cached: { readonly stamp: TokenFile.Stamp; readonly tokens: Token.TokenSet } | undefined
    const load = Effect.gen(function*() {
      const stamp = yield* TokenFile.stamp(path)
      if (Option.isNone(stamp)) {
        return yield* new TokenSource.LoginRequired({ reason: `There is no token file at ${path}.` })
      }
      if (cached === undefined || !TokenFile.sameStamp(cached.stamp, stamp.value)) {
        const read = yield* TokenFile.readStamped(path).pipe(
          Effect.mapError((e) => new TokenSource.LoginRequired({ reason: e.message }))
        )
        if (Option.isNone(read)) {
          return yield* new TokenSource.LoginRequired({ reason: `There is no token file at ${path}.` })
        }
        cached = read.value
      }
      const tokens = cached!.tokens
      if (tokens.isExpired(yield* Clock.currentTimeMillis)) {
        return yield* new TokenSource.TokenUnavailable({
          reason: `the token in ${path} has expired; is the strava-auth daemon running?`
        })
      }
      return tokens.accessToken
    }).pipe(Effect.provideService(FileSystem.FileSystem, fs))
    return {
      get: load,
      // The daemon refreshes; a rejected token is only replaced once the daemon has written a new one.
      invalidate: (rejected) =>
        Effect.flatMap(load, (token) =>
          Redacted.value(token) !== Redacted.value(rejected)
            ? Effect.succeed(token)
            : Effect.fail(
              new TokenSource.TokenUnavailable({
                reason: "Strava refused the token in the file; the daemon will replace it."
              })
            ))
    }
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layerFile = (path: string): Layer.Layer<TokenSource.TokenSource, never, FileSystem.FileSystem> =>
  Layer.effect(TokenSource.TokenSource, makeFile(path))
