/**
 * The client half of the socket protocol, used by `token`, `status`, `refresh` and the socket token source.
 *
 * `Down` means nothing answers (no socket file, or a stale one): the caller then falls back to the file. A
 * socket that someone other than this user, root or the daemon's user could have put there is refused before
 * connecting (`SocketTrust`), with a `ConfigurationError` (exit 78) that says why: its answer could be anyone's.
 *
 * @since 0.1.0
 */
import * as Http from "node:http"

import { TokenSource } from "@strava-auth/core"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"

import { ConfigurationError } from "./DaemonError.js"
import * as SocketTrust from "./SocketTrust.js"
import * as Wire from "./Wire.js"

/**
 * @since 0.1.0
 * @category models
 */
export type Reply =
  | { readonly _tag: "Down"; readonly reason: string }
  | { readonly _tag: "Reply"; readonly status: number; readonly body: string }

/**
 * One request on the socket, with a deadline; refused when the socket cannot be trusted (see `SocketTrust`).
 *
 * @since 0.1.0
 * @category requests
 */
export const request = (
  socketPath: string,
  method: "GET" | "POST",
  path: string,
  timeoutMillis = 2000
): Effect.Effect<Reply, ConfigurationError> =>
  Effect.suspend(() => {
    const refusal = SocketTrust.refusal(socketPath)
    return refusal === undefined
      ? send(socketPath, method, path, timeoutMillis)
      : Effect.fail(new ConfigurationError({ detail: refusal }))
  })

const send = (socketPath: string, method: "GET" | "POST", path: string, timeoutMillis: number) =>
  Effect.async<Reply>((resume) => {
    const req = Http.request({ socketPath, method, path, headers: { host: "localhost" }, agent: false }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (chunk: Buffer) => chunks.push(chunk))
      res.on("end", () =>
        resume(Effect.succeed({
          _tag: "Reply",
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString("utf8")
        })))
      res.on("error", (error) => resume(Effect.succeed({ _tag: "Down", reason: error.message })))
    })
    req.setTimeout(timeoutMillis, () => req.destroy(new Error(`no answer within ${timeoutMillis} ms`)))
    req.on("error", (error) => resume(Effect.succeed({ _tag: "Down", reason: error.message })))
    req.end()
    return Effect.sync(() => req.destroy())
  })

/**
 * The typed error for a daemon's non-200 reply: `needs_login` is `LoginRequired`, anything else
 * `TokenUnavailable` (try again later). The daemon's message is kept: it says what to do.
 *
 * @since 0.1.0
 * @category parsing
 */
export const errorOf = (status: number, body: string): TokenSource.LoginRequired | TokenSource.TokenUnavailable => {
  const parsed = Wire.decodeErrorReply(body)
  const message = Option.match(parsed, {
    onNone: () => `the daemon answered ${status}.`,
    onSome: (reply) => reply.message
  })
  // an account the daemon does not serve has never logged in (or was revoked): a login is what it needs
  return Option.isSome(parsed) && (parsed.value.error === "needs_login" || parsed.value.error === "unknown_account")
    ? new TokenSource.LoginRequired({ reason: message })
    : new TokenSource.TokenUnavailable({ reason: message })
}

/**
 * Whether a reply says the daemon serves no such account (it may not have picked up a login made a moment ago).
 *
 * @since 0.3.0
 * @category decoding
 */
export const unknownAccount = (reply: Reply): boolean =>
  reply._tag === "Reply" && reply.status === 404 &&
  Option.exists(Wire.decodeErrorReply(reply.body), (e) => e.error === "unknown_account")
