/**
 * `strava-auth login`: the browser flow through a loopback redirect.
 *
 * A server listens on 127.0.0.1 (a free port, or `--port` for `ssh -L`) with two addresses:
 *
 * - `/start?key=KEY`, the start address: `KEY` is 32 random bytes (base64url), compared in constant time. It
 *   is never on a command line (every local user can read argv in `/proc/PID/cmdline`) nor on stderr (where
 *   logs are collected): `--no-browser` prints it on stdout, and the browser is opened on a private page
 *   (`Browser.openPrivately`: a 0600 file in a 0700 directory, opened as `file://PATH`) that redirects to it.
 *   A request to `/start` without the key gets a 403 page and changes nothing (another user who found the
 *   port can neither start nor stop the login). The first visit with the key is answered with a 302 to
 *   Strava's authorize URL (which carries the `state`) and a cookie bound to this login (HttpOnly,
 *   SameSite=Lax). A second visit with the key stops the login: the key was seen by someone else, or the user
 *   opened it twice, so nobody finishes it, and nothing is written from then on, not even by an exchange of
 *   the code already under way (`stopped` is checked under the token file's lock, right before the write).
 * - `/authorization`, Strava's redirect. A request without this login's cookie, or whose `state` is not this
 *   login's, gets a 400 page and the server keeps waiting for the real redirect (a forged or stale link
 *   cannot end the login). The code is exchanged before the browser is answered, so the page can say who
 *   logged in, or exactly what went wrong.
 *
 * Strava allows `127.0.0.1` and `localhost` redirects on any port for every app, so no callback-domain
 * setting is needed. Both addresses use `127.0.0.1` (not `localhost`): a cookie set for one host is not sent
 * to the other.
 *
 * `--manual` runs no server: the redirect goes to `http://localhost/exchange_token`, where the browser shows
 * an error page whose address holds the code (as in stravalib's guide); the user pastes that address. The
 * authorize URL is printed on stdout only and never passed to another program.
 *
 * The athlete's name and scopes, which come from Strava, are printed through `Terminal.sanitizeForTerminal`;
 * the texts in errors (a redirect's `error=...`, Strava's resource/field/code) are scrubbed in core, where the
 * errors are made (`StravaError.scrub`).
 *
 * @since 0.1.0
 */
import * as Http from "node:http"
import * as Readline from "node:readline"

import type * as FileSystem from "@effect/platform/FileSystem"
import type { StravaScope, Token } from "@strava-auth/core"
import { Callback, OAuthState, StravaOAuth } from "@strava-auth/core"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Runtime from "effect/Runtime"

import * as Browser from "./Browser.js"
import type * as DaemonError from "./DaemonError.js"
import { DaemonFailure, type TokenFileError, UsageError } from "./DaemonError.js"
import { sanitizeForTerminal } from "./Terminal.js"
import * as TokenFile from "./TokenFile.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly tokenFile: string
  readonly scopes: ReadonlyArray<StravaScope.StravaScope>
  readonly port: number
  readonly openBrowser: boolean
  readonly forcePrompt: boolean
  readonly manual: boolean
  readonly timeout: Duration.Duration
  /** Where the URL and progress go (stderr); the URL alone also goes to stdout. */
  readonly say: (line: string) => void
  readonly print: (line: string) => void
}

const escape = (value: string): string =>
  value.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" })[c]!)

/**
 * The small page the browser gets back.
 *
 * @since 0.1.0
 * @category rendering
 */
export const page = (title: string, body: string, ok: boolean): string =>
  `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)} | strava-auth</title>` +
  `<style>body{font-family:sans-serif;max-width:36rem;margin:4rem auto}h1{color:${ok ? "#2a7" : "#c33"}}</style>` +
  `</head><body><h1 id="result">${escape(title)}</h1><p id="detail">${escape(body)}</p></body></html>`

const athleteName = (tokens: Token.TokenSet): string => {
  const a = tokens.athlete
  const name = sanitizeForTerminal([a?.firstname, a?.lastname].filter((s) => typeof s === "string").join(" ")).trim()
  return name === "" ? `athlete ${a?.id ?? "?"}` : name
}

const scopesOf = (tokens: Token.TokenSet): string => sanitizeForTerminal(tokens.scopes.join(","))

/**
 * Writes the token file, unless `stopped()` (checked under the file's lock, right before the write) says the
 * login was stopped meanwhile; `writing` is called once the write is decided.
 */
const finish = (
  tokens: Token.TokenSet,
  options: Options,
  guard: { readonly stopped: () => DaemonFailure | undefined; readonly writing: () => void } = {
    stopped: () => undefined,
    writing: () => undefined
  }
) =>
  TokenFile.withLock(
    options.tokenFile,
    Effect.suspend((): Effect.Effect<void, DaemonFailure | TokenFileError, FileSystem.FileSystem> => {
      const stopped = guard.stopped()
      if (stopped !== undefined) return Effect.fail(stopped)
      guard.writing()
      return TokenFile.write(options.tokenFile, tokens)
    })
  ).pipe(
    Effect.zipRight(Effect.sync(() =>
      options.say(
        `Logged in as ${athleteName(tokens)} (scopes ${scopesOf(tokens)}); token saved to ${options.tokenFile}.`
      )
    )),
    Effect.as(tokens)
  )

/**
 * Runs the login and writes the token file.
 *
 * @since 0.1.0
 * @category login
 */
export const run = (options: Options) => options.manual ? manual(options) : loopback(options)

const cookieOf = (header: string | undefined, name: string): string | undefined => {
  for (const part of (header ?? "").split(";")) {
    const at = part.indexOf("=")
    if (at > 0 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim()
  }
  return undefined
}

const loopback = (options: Options) =>
  Effect.gen(function*() {
    const oauth = yield* StravaOAuth.StravaOAuth
    const runtime = yield* Effect.runtime<StravaOAuth.StravaOAuth | FileSystem.FileSystem>()
    const state = yield* OAuthState.generate
    // What makes the start address this login's: only the user's terminal and the private page hold it.
    const key = yield* OAuthState.generate
    // The browser's proof that it is the one that visited /start (and so got the state).
    const nonce = yield* OAuthState.generate
    const done = yield* Deferred.make<Token.TokenSet, DaemonError.Failure>()

    const server = Http.createServer({ requestTimeout: 60_000 })
    const port = yield* Effect.acquireRelease(
      Effect.async<number, DaemonFailure>((resume) => {
        server.once("error", (error: NodeJS.ErrnoException) =>
          resume(Effect.fail(
            new DaemonFailure({
              detail: error.code === "EADDRINUSE"
                ? `port ${options.port} on 127.0.0.1 is in use; pick another with --port, or omit it for a free one.`
                : `cannot start the callback server: ${error.message}`,
              transient: error.code === "EADDRINUSE"
            })
          )))
        server.listen({ host: "127.0.0.1", port: options.port }, () => {
          const address = server.address()
          resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : options.port))
        })
      }),
      () =>
        Effect.async<void>((resume) => {
          server.close(() => resume(Effect.void))
          server.closeIdleConnections()
          setTimeout(() => server.closeAllConnections(), 1000).unref()
        })
    )
    const origin = `http://127.0.0.1:${port}`
    // `start` names the address in messages; `startUrl`, with the key, goes only to stdout and the private page.
    const start = `${origin}/start`
    const startUrl = `${start}?key=${key}`
    const redirectUri = `${origin}/authorization`
    // Named per port: two logins in one browser keep their own cookies (cookies ignore the port).
    const cookie = `strava_auth_login_${port}`
    const url = yield* oauth.authorizeUrl({
      redirectUri,
      scope: options.scopes,
      state,
      approvalPrompt: options.forcePrompt ? "force" : "auto"
    })

    let started = false
    let busy = false
    // Set by a second visit with the key; from then on nothing is written (see `finish`).
    let stopped: DaemonFailure | undefined
    // Set once the token file's write is decided (the check of `stopped` passed).
    let writing = false
    let refused = 0
    const stop = (): DaemonFailure =>
      stopped ??= new DaemonFailure({
        detail: writing
          ? `this login's start address ${start} was opened a second time after this login had already started ` +
            `saving its token to ${options.tokenFile}. If you did not just finish this login in your own ` +
            "browser, run `strava-auth login` again to replace that token with yours."
          : `this login's start address ${start} was opened a second time, so the login stopped and nothing ` +
            "was saved (not even a login already on its way back from Strava): another program or user on " +
            "this machine may have opened it first. Run `strava-auth login` again and open its address once.",
        transient: false
      })
    server.on("request", (req: Http.IncomingMessage, res: Http.ServerResponse) => {
      const respond = (status: number, html: string) => {
        res.writeHead(status, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" })
        res.end(html)
      }
      const target = new URL(req.url ?? "/", origin)
      if (req.method === "GET" && target.pathname === "/start") {
        const presented = target.searchParams.get("key")
        if (presented === null || !OAuthState.equals(key, presented)) {
          // Not this login's address (another user who found the port, say): it neither starts nor stops it.
          refused += 1
          if (refused <= 10) {
            options.say(
              "A request to /start without this login's key was refused (another program or user on this machine " +
                `may be probing port ${port}); the login goes on.${
                  refused === 10 ? " Further ones are not reported." : ""
                }`
            )
          }
          return respond(
            403,
            page(
              "This address is not this login's",
              "This login's start address has a key in it: open the whole address that `strava-auth login` " +
                "printed, or the page it opened in your browser.",
              false
            )
          )
        }
        if (!started && stopped === undefined) {
          started = true
          res.writeHead(302, {
            location: url,
            "set-cookie": `${cookie}=${nonce}; HttpOnly; SameSite=Lax; Path=/`,
            "cache-control": "no-store",
            "referrer-policy": "no-referrer"
          })
          return res.end()
        }
        const failure = stop()
        respond(409, page("This login was stopped", failure.message, false))
        return Runtime.runFork(runtime)(Deferred.fail(done, failure))
      }
      if (req.method !== "GET" || target.pathname !== "/authorization") {
        return respond(404, page("Not found", "This server only answers /start and Strava's redirect.", false))
      }
      if (stopped !== undefined) return respond(409, page("This login was stopped", stopped.message, false))
      const presented = cookieOf(req.headers.cookie, cookie)
      if (presented === undefined || !OAuthState.equals(nonce, presented)) {
        // Not from the browser that visited /start: refuse it and keep waiting for the real one.
        const reason = "The redirect did not come from the browser that opened this login's start address " +
          `(no ${cookie} cookie, or a wrong one). Open the address this login printed, in one browser.`
        options.say(`Refused a redirect: ${reason}`)
        return respond(400, page("This link does not belong to this login", reason, false))
      }
      const handle = Effect.gen(function*() {
        const callback = yield* Effect.either(Callback.parse(target, { state, requiredScopes: options.scopes }))
        if (callback._tag === "Left") {
          const error = callback.left
          if (error._tag === "StateMismatch" || error._tag === "MissingCode") {
            // Not this login's redirect: refuse it and keep waiting for the real one.
            options.say(`Refused a redirect: ${error.message}`)
            return respond(400, page("This link does not belong to this login", error.message, false))
          }
          respond(403, page("Login failed", error.message, false))
          return yield* Deferred.fail(done, error)
        }
        if (busy) return respond(409, page("Already logging in", "This login is already exchanging its code.", false))
        busy = true
        const tokens = yield* Effect.either(
          oauth.exchangeCode(callback.right).pipe(Effect.flatMap((t) =>
            finish(t, options, {
              stopped: () =>
                stopped === undefined ? undefined : new DaemonFailure({
                  detail: `${stopped.message} Strava's answer to this login's code arrived after the stop and ` +
                    "was not saved.",
                  transient: false
                }),
              writing: () => (writing = true)
            })
          ))
        )
        if (tokens._tag === "Left") {
          respond(502, page("Login failed", tokens.left.message, false))
          return yield* Deferred.fail(done, tokens.left)
        }
        respond(
          200,
          page(
            `Logged in as ${athleteName(tokens.right)}`,
            `strava-auth has saved the token (scopes ${scopesOf(tokens.right)}). You can close this tab.`,
            true
          )
        )
        return yield* Deferred.succeed(done, tokens.right)
      })
      Runtime.runFork(runtime)(handle)
    })

    // stdout only (the user's terminal): the key is this login's, and stderr is where logs are collected.
    options.print(startUrl)
    options.say(
      "Open the address printed above (on stdout) in a browser and press Authorize on Strava's page.\n" +
        "It holds this login's key (keep it to yourself) and answers one visit only: a second one stops the login."
    )
    if (options.openBrowser && (yield* Browser.openPrivately(startUrl))) options.say("(opened it in your browser)")
    else options.say(`From another machine, forward the port first: ssh -L ${port}:127.0.0.1:${port} this-host`)
    options.say(
      `Waiting for Strava's redirect on ${redirectUri} (up to ${Duration.format(options.timeout)}; Ctrl-C cancels).`
    )
    return yield* Deferred.await(done).pipe(
      Effect.timeoutFail({
        duration: options.timeout,
        onTimeout: () =>
          new DaemonFailure({
            detail: `no redirect from Strava arrived within ${Duration.format(options.timeout)}. ` +
              "Run `strava-auth login` again and open the address it prints.",
            transient: true
          })
      })
    )
  }).pipe(Effect.scoped)

const readLine = Effect.async<string | undefined>((resume) => {
  const rl = Readline.createInterface({ input: process.stdin, terminal: false })
  let answered = false
  rl.once("line", (line) => {
    answered = true
    rl.close()
    resume(Effect.succeed(line))
  })
  rl.once("close", () => {
    if (!answered) resume(Effect.succeed(undefined))
  })
  return Effect.sync(() => rl.close())
})

const manual = (options: Options) =>
  Effect.gen(function*() {
    const oauth = yield* StravaOAuth.StravaOAuth
    const state = yield* OAuthState.generate
    const url = yield* oauth.authorizeUrl({
      redirectUri: "http://localhost/exchange_token",
      scope: options.scopes,
      state,
      approvalPrompt: options.forcePrompt ? "force" : "auto"
    })
    // stdout only: the URL holds the state, and stderr is where logs are collected (the journal, CI logs).
    // It is never handed to an opener either: argv is readable by every user. The user copies it by hand.
    options.print(url)
    options.say(
      "Open the URL printed above (on stdout) in a browser and press Authorize.\n" +
        "The browser then shows an error page (nothing listens on localhost): that is expected. Copy the whole " +
        "address from its address bar (it contains code=...) and paste it here, then press Enter:"
    )
    const line = yield* readLine.pipe(Effect.timeout(options.timeout), Effect.orElseSucceed(() => undefined))
    if (line === undefined || line.trim() === "") {
      return yield* new UsageError({ detail: "no address was pasted. Run `strava-auth login --manual` again." })
    }
    const callback = yield* Callback.parse(line.trim(), { state, requiredScopes: options.scopes })
    const tokens = yield* oauth.exchangeCode(callback)
    return yield* finish(tokens, options)
  })
