/**
 * The token socket: HTTP/1.1 on a Unix socket, for `curl --unix-socket` and any language's HTTP client.
 *
 * | request | answer |
 * |---|---|
 * | `GET /token` | 200 `text/plain`, the access token; 503 JSON `{error, message}` when there is no valid one |
 * | `GET /token.json` | `{access_token, token_type, expires_at, scope, athlete_id}` |
 * | `GET /health` | 200 or 503, `{status, expires_at, next_refresh_at, last_refresh_at, consecutive_failures, last_error, athlete_id, scope}` |
 * | `POST /refresh` | refresh now (single flight), then like `/token.json` |
 * | `GET /accounts` | `{version, accounts: [{account, ...health}]}`, every account the daemon serves |
 * | `GET /metrics` | Prometheus' text format (`Metrics`) |
 * | anything else | 404, or 405 with `Allow` on a known path |
 *
 * `/token`, `/token.json`, `/health` and `/refresh` act on the account `default`, or on `?account=NAME`; an
 * account the daemon does not serve is a 404 `unknown_account` that names it.
 *
 * It is written on `node:http` rather than Effect's HttpServer: `GET /token` is the hot path scripts hit, and
 * it does no more than read the refresher's current snapshot and write it (see docs/BENCHMARKS.md). Effect
 * runs everything around it: listening, the permissions, the stale-socket check, shutdown.
 *
 * Safety: the socket is 0600 inside a 0700 directory of ours (`PrivateDirectory`: created so when missing,
 * refused when it is someone else's or open to others), and the process umask is tightened around `listen`
 * so there is no window with a wider mode. A broken or hostile client cannot stall the others or grow the
 * daemon: headers are capped at 8 KiB; a request must arrive within 5 s and an idle connection is closed after
 * 5 s (checked every second); bodies are refused; at most `limits.pipelined` requests may wait for their
 * answers on one connection (a client that pipelines and does not read is disconnected, so what is queued
 * for it stays small); at most `limits.connections` connections are open (more are closed at once); every
 * error reply closes its connection.
 *
 * A socket file deleted under the running daemon (a cleaned `$XDG_RUNTIME_DIR`) is noticed within a second
 * (`lstat` on a timer, comparing the inode it bound) and the socket is bound again, its directory re-created.
 *
 * @since 0.1.0
 */
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Net from "node:net"
import * as Path from "node:path"

import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"

import * as Accounts from "./Accounts.js"
import type { ConfigurationError } from "./DaemonError.js"
import { DaemonFailure } from "./DaemonError.js"
import * as Metrics from "./Metrics.js"
import * as PrivateDirectory from "./PrivateDirectory.js"
import type { RefreshError, Snapshot } from "./Refresher.js"
import * as Refresher from "./Refresher.js"
import * as Wire from "./Wire.js"

/**
 * One account's state and its refresh.
 *
 * @since 0.3.0
 * @category models
 */
export interface AccountHandlers {
  readonly snapshot: () => Snapshot
  /** Refresh now; resolves to the fresh snapshot or the error. */
  readonly refresh: () => Promise<
    | { readonly ok: true; readonly outcome: Wire.RefreshReply["outcome"] }
    | { readonly ok: false; readonly error: RefreshError }
  >
}

/**
 * The account `default`'s handlers, and the others by name.
 *
 * @since 0.1.0
 * @category models
 */
export interface Handlers extends AccountHandlers {
  readonly now: () => number
  /** Another account's handlers by name; `undefined` for one not served. Only `default` without it. */
  readonly account?: ((name: string) => AccountHandlers | undefined) | undefined
  /** Every account with its snapshot, for `/accounts`; only `default` without it. */
  readonly accounts?: (() => ReadonlyArray<{ readonly name: string; readonly snapshot: Snapshot }>) | undefined
  /** The Prometheus text (`Metrics.render`); without it there is no /metrics. */
  readonly metrics?: (() => string) | undefined
}

/**
 * The server's limits (see the module's safety notes and docs/SOCKET.md).
 *
 * @since 0.1.0
 * @category limits
 */
export const limits = {
  /** Open connections; one more is closed as soon as it is accepted. */
  connections: 256,
  /** Requests on one connection still waiting for their answer; one more disconnects the client. */
  pipelined: 64,
  /** Headers, in bytes (431 past that). */
  headerBytes: 8 * 1024,
  /** Milliseconds for a request to arrive (408 past that), and for an idle keep-alive connection to be closed. */
  timeout: 5000,
  /** Milliseconds between node's checks of the request timeout, and between checks that the socket still exists. */
  check: 1000
} as const

const JSON_TYPE = { "content-type": "application/json", "cache-control": "no-store" }
const TEXT_TYPE = { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" }

const sendJson = (
  res: Http.ServerResponse,
  status: number,
  body: Wire.TokenJson | Wire.Health | Wire.RefreshReply | Wire.ErrorReply | Wire.AccountsReply,
  extra: Record<string, string> = {}
) => {
  const text = JSON.stringify(body)
  // An error reply closes its connection: a client that got one is confused or hostile, and holds nothing.
  res.writeHead(status, {
    ...JSON_TYPE,
    "content-length": Buffer.byteLength(text),
    ...(status >= 400 ? { connection: "close" } : undefined),
    ...extra
  })
  res.end(text)
}

/** Per connection: requests that arrived while an earlier answer was still unwritten (see `handler`). */
const queued = Symbol("strava-auth/queued")
interface Connection extends Net.Socket {
  [queued]: number
}

const unavailable = (snapshot: Snapshot): Wire.ErrorReply =>
  snapshot.status === "needs_login"
    ? {
      version: Wire.version,
      error: "needs_login",
      message: snapshot.lastError ?? "No valid grant. Run `strava-auth login`."
    }
    : {
      version: Wire.version,
      error: "unavailable",
      message: `The token has expired and could not be refreshed yet (${snapshot.lastError ?? "no answer"}). ` +
        "The daemon keeps retrying; try again shortly."
    }

const iso = (millis: number | undefined) => (millis === undefined ? null : new Date(millis).toISOString())

/**
 * The `/health` body.
 *
 * @since 0.1.0
 * @category encoding
 */
export const health = (snapshot: Snapshot, nowMillis: number): Wire.Health => ({
  version: Wire.version,
  status: snapshot.status,
  expires_at: snapshot.tokens?.expiresAt ?? null,
  // A refresh that is due now is shown as now: the loop takes it up at once (never a time in the past).
  next_refresh_at: iso(snapshot.nextRefreshAt === undefined ? undefined : Math.max(snapshot.nextRefreshAt, nowMillis)),
  last_refresh_at: iso(snapshot.lastRefreshAt),
  consecutive_failures: snapshot.consecutiveFailures,
  last_error: snapshot.lastError ?? null,
  athlete_id: snapshot.tokens?.athlete?.id ?? null,
  scope: snapshot.tokens?.scopes.join(",") ?? null
})

const outcomeMessages: Record<Wire.RefreshReply["outcome"], string> = {
  refreshed: "Refreshed: Strava issued a new access token.",
  same: "Strava returned the same access token: it mints a new one only near expiry (its one-hour rule).",
  current: "Another strava-auth process had just refreshed; this is its token.",
  coalesced: "A refresh was asked for moments ago; this is its token (Strava was not asked again, to spare the " +
    "app's rate limit)."
}

const routes: Record<string, string> = {
  "/token": "GET",
  "/token.json": "GET",
  "/health": "GET",
  "/refresh": "POST",
  "/metrics": "GET",
  "/accounts": "GET"
}

/** The account a request names (`?account=NAME`), or `default`. */
const accountParameter = (url: string, query: number): string => {
  if (query < 0) return Accounts.defaultName
  const named = new URLSearchParams(url.slice(query + 1)).get("account")
  return named === null ? Accounts.defaultName : named
}

/** The handlers of the account a request names; `undefined` when the daemon serves no such account. */
const accountOf = (handlers: Handlers, name: string): AccountHandlers | undefined =>
  name === Accounts.defaultName ? handlers : handlers.account?.(name)

const unknownAccount = (res: Http.ServerResponse, name: string) =>
  sendJson(res, 404, {
    version: Wire.version,
    error: "unknown_account",
    message: `The daemon serves no account ${JSON.stringify(name.slice(0, 80))}. GET /accounts lists them; ` +
      `\`strava-auth login --account NAME\` adds one.`
  })

/**
 * The request handler.
 *
 * @since 0.1.0
 * @category handlers
 */
export const handler = (handlers: Handlers) => {
  // The hot path's answer, rebuilt only when the snapshot changes (a refresh), so a request allocates nothing
  // of its own: one snapshot read, one expiry check, one write.
  let cachedFor: Snapshot | undefined
  let body = ""
  let headers: Record<string, string | number> = {}
  return (req: Http.IncomingMessage, res: Http.ServerResponse): void => {
    // A pipelined request whose predecessor's answer is not written yet gets no socket of its own (node queues
    // it). Count those since the queue was last seen empty; past the limit the client is pipelining without
    // reading, and everything queued for it would stay in memory: disconnect it.
    const connection = req.socket as Connection
    if (res.socket === null) {
      if (++connection[queued] > limits.pipelined) return void connection.destroy()
    } else if (connection[queued] !== 0) connection[queued] = 0
    const url = req.url ?? "/"
    const query = url.indexOf("?")
    const path = query >= 0 ? url.slice(0, query) : url
    if (path === "/token" && req.method === "GET") {
      let account: AccountHandlers | undefined = handlers
      if (query >= 0) {
        const name = accountParameter(url, query)
        account = accountOf(handlers, name)
        if (account === undefined) return unknownAccount(res, name)
      }
      const snapshot = account.snapshot()
      if (Refresher.servable(snapshot, handlers.now())) {
        if (snapshot !== cachedFor) {
          cachedFor = snapshot
          body = Refresher.tokenValue(snapshot.tokens)
          headers = { ...TEXT_TYPE, "content-length": Buffer.byteLength(body) }
        }
        res.writeHead(200, headers)
        res.end(body)
      } else sendJson(res, 503, unavailable(snapshot))
      return
    }
    other(handlers, req, res, path, url, query)
  }
}

const other = (
  handlers: Handlers,
  req: Http.IncomingMessage,
  res: Http.ServerResponse,
  path: string,
  url: string,
  query: number
): void => {
  const allowed = routes[path]
  if (allowed === undefined) {
    return sendJson(res, 404, {
      version: Wire.version,
      error: "not_found",
      message: `No ${path} here. Try /token, /token.json, /health, /accounts, /metrics or POST /refresh.`
    })
  }
  if (req.method !== allowed) {
    return sendJson(res, 405, {
      version: Wire.version,
      error: "method_not_allowed",
      message: `${path} takes ${allowed}.`
    }, { allow: allowed })
  }
  if (req.headers["content-length"] !== undefined && req.headers["content-length"] !== "0") {
    return sendJson(res, 413, { version: Wire.version, error: "body_not_allowed", message: "Requests take no body." })
  }
  if (path === "/metrics") {
    const body = handlers.metrics?.() ?? ""
    res.writeHead(200, { "content-type": Metrics.contentType, "content-length": Buffer.byteLength(body) })
    return void res.end(body)
  }
  if (path === "/accounts") {
    const all = handlers.accounts?.() ?? [{ name: Accounts.defaultName, snapshot: handlers.snapshot() }]
    const now = handlers.now()
    const body: Wire.AccountsReply = {
      version: Wire.version,
      accounts: all.map(({ name, snapshot }) => ({ account: name, ...health(snapshot, now) }))
    }
    return sendJson(res, 200, body)
  }
  const name = accountParameter(url, query)
  const account = accountOf(handlers, name)
  if (account === undefined) return unknownAccount(res, name)
  const snapshot = account.snapshot()
  switch (path) {
    case "/token.json":
      return Refresher.servable(snapshot, handlers.now())
        ? sendJson(res, 200, Refresher.tokenJson(snapshot.tokens))
        : sendJson(res, 503, unavailable(snapshot))
    case "/health": {
      return sendJson(res, Refresher.servable(snapshot, handlers.now()) ? 200 : 503, health(snapshot, handlers.now()))
    }
    case "/refresh":
      account.refresh().then((result) => {
        const after = account.snapshot()
        if (result.ok && Refresher.servable(after, handlers.now())) {
          sendJson(res, 200, {
            ...Refresher.tokenJson(after.tokens),
            outcome: result.outcome,
            message: outcomeMessages[result.outcome]
          })
        } else {
          const error = result.ok ? undefined : result.error
          sendJson(res, 503, {
            version: Wire.version,
            error: error === undefined
              ? "unavailable"
              : after.status === "needs_login"
              ? "needs_login"
              : "refresh_failed",
            message: error?.message ?? unavailable(after).message,
            // the daemon's own policy: what it will retry by itself is worth retrying for the caller too
            transient: error === undefined ? true : Refresher.retryable(error)
          })
        }
      })
      return
  }
}

/**
 * Whether something answers on the socket: a connect probe with a short deadline.
 *
 * @since 0.1.0
 * @category probing
 */
export const answers = (socketPath: string): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = Net.connect({ path: socketPath })
    const done = (value: boolean) => {
      socket.destroy()
      resolve(value)
    }
    socket.setTimeout(1000, () => done(false))
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
  })

/**
 * The `node:http` server with the limits above; not listening yet.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (handlers: Handlers): Http.Server => {
  const server = Http.createServer({
    maxHeaderSize: limits.headerBytes,
    requestTimeout: limits.timeout,
    headersTimeout: limits.timeout,
    keepAliveTimeout: limits.timeout,
    // node checks the two timeouts above only this often (30 s by default: a 408 after up to 35 s)
    connectionsCheckingInterval: limits.check
  })
  server.maxConnections = limits.connections // net closes the connection past it as soon as it is accepted
  server.on("connection", (socket: Connection) => {
    socket[queued] = 0
  })
  server.on("request", handler(handlers))
  server.on("clientError", (error: NodeJS.ErrnoException, socket: Net.Socket) => {
    const status = error.code === "HPE_HEADER_OVERFLOW"
      ? "431 Request Header Fields Too Large"
      : error.code === "ERR_HTTP_REQUEST_TIMEOUT"
      ? "408 Request Timeout"
      : "400 Bad Request"
    // destroySoon: closed once the reply is written, whether or not the client closes its side
    if (socket.writable) socket.write(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`)
    socket.destroySoon()
  })
  return server
}

const listen = (server: Http.Server, socketPath: string, group?: number | undefined) =>
  Effect.async<number, DaemonFailure>((resume) => {
    const previous = process.umask(0o177) // the socket is born 0600
    const onError = (error: Error) => {
      process.umask(previous)
      resume(
        Effect.fail(new DaemonFailure({ detail: `cannot listen on ${socketPath}: ${error.message}`, transient: false }))
      )
    }
    server.once("error", onError)
    server.listen({ path: socketPath }, () => {
      process.umask(previous)
      server.off("error", onError)
      try {
        // for a group: its group first, then 0660 (never readable by others)
        if (group !== undefined) Fs.chownSync(socketPath, -1, group)
        Fs.chmodSync(socketPath, group === undefined ? 0o600 : 0o660)
      } catch (error) {
        return resume(Effect.fail(
          new DaemonFailure({
            detail: `cannot give the socket ${socketPath} to group ${group}: ${(error as Error).message}`,
            transient: false
          })
        ))
      }
      resume(Effect.succeed(Fs.lstatSync(socketPath).ino))
    })
  })

const inode = (path: string): number | undefined => {
  try {
    return Fs.lstatSync(path).ino
  } catch {
    return undefined
  }
}

/**
 * Listens on `socketPath` until the scope closes, then closes and removes the socket. Binds it again when the
 * socket file disappears (checked every `limits.check` ms).
 *
 * @since 0.1.0
 * @category constructors
 */
export const serve = (
  socketPath: string,
  handlers: Handlers,
  options: {
    /** A group whose members may use the socket (`--socket-group`): the socket 0660, its directory 0750. */
    readonly group?: number | undefined
  } = {}
): Effect.Effect<Http.Server, DaemonFailure | ConfigurationError, Scope.Scope> =>
  Effect.gen(function*() {
    const dir = Path.dirname(socketPath)
    const group = options.group
    yield* PrivateDirectory.ensure(dir, "socket", group)
    if (Fs.existsSync(socketPath)) {
      if (yield* Effect.promise(() => answers(socketPath))) {
        return yield* new DaemonFailure({
          detail: `another strava-auth daemon is answering on ${socketPath}. Stop it first ` +
            "(systemctl --user stop strava-auth), or give this one another --socket.",
          transient: true
        })
      }
      Fs.rmSync(socketPath, { force: true }) // stale, left by a crash
    }
    const server = make(handlers)
    let bound = yield* Effect.acquireRelease(
      listen(server, socketPath, group),
      () =>
        Effect.async<void>((resume) => {
          server.close(() => resume(Effect.void))
          server.closeAllConnections()
        }).pipe(Effect.zipRight(Effect.sync(() => {
          // closing a listening socket unlinks its path; remove it here only if it is still ours
          if (inode(socketPath) === bound) Fs.rmSync(socketPath, { force: true })
        })))
    )
    // The socket file deleted under us (a cleaned runtime directory): bind it again. Something else at the path
    // (another daemon started meanwhile) is left alone.
    let warned = false
    const recheck = Effect.gen(function*() {
      const found = inode(socketPath)
      if (found === bound) return
      if (found !== undefined) {
        if (!warned) yield* Effect.logWarning("something else is at the socket path now; not replacing it")
        warned = true
        return
      }
      yield* Effect.logWarning("the socket file was deleted; listening on it again")
      yield* PrivateDirectory.ensure(dir, "socket", group)
      server.close() // stops accepting on the deleted socket; open connections finish
      bound = yield* listen(server, socketPath, group)
      warned = false
    }).pipe(
      Effect.catchAll((error) =>
        Effect.logError("cannot listen on the socket again").pipe(
          Effect.annotateLogs({ error: error.message })
        )
      ),
      Effect.annotateLogs({ socket: socketPath })
    )
    yield* Effect.forkScoped(Effect.repeat(recheck, Schedule.spaced(Duration.millis(limits.check))))
    return server
  })
