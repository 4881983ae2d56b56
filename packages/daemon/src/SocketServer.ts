/**
 * The token socket: HTTP/1.1 on a Unix socket, for `curl --unix-socket` and any language's HTTP client.
 *
 * | request | answer |
 * |---|---|
 * | `GET /token` | 200 `text/plain`, the access token; 503 JSON `{error, message}` when there is no valid one |
 * | `GET /token.json` | `{access_token, token_type, expires_at, scope, athlete_id}` |
 * | `GET /health` | 200 or 503, `{status, expires_at, next_refresh_at, last_refresh_at, consecutive_failures, last_error, athlete_id, scope}` |
 * | `POST /refresh` | refresh now (single flight), then like `/token.json` |
 * | anything else | 404, or 405 with `Allow` on a known path |
 *
 * It is written on `node:http` rather than Effect's HttpServer: `GET /token` is the hot path scripts hit, and
 * it does no more than read the refresher's current snapshot and write it (see docs/BENCHMARKS.md). Effect
 * runs everything around it: listening, the permissions, the stale-socket check, shutdown.
 *
 * Safety: the socket is 0600 inside a 0700 directory (created so when missing), and the process umask is
 * tightened around `listen` so there is no window with a wider mode. Headers are capped at 8 KiB, a request
 * must arrive within 5 s and bodies are refused, so a stuck or hostile client cannot stall the others.
 *
 * @since 0.1.0
 */
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Net from "node:net"
import * as Path from "node:path"

import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

import { DaemonFailure } from "./DaemonError.js"
import type { RefreshError, Snapshot } from "./Refresher.js"
import * as Refresher from "./Refresher.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Handlers {
  readonly snapshot: () => Snapshot
  readonly now: () => number
  /** Refresh now; resolves to the fresh snapshot or the error. */
  readonly refresh: () => Promise<{ readonly ok: true } | { readonly ok: false; readonly error: RefreshError }>
}

const JSON_TYPE = { "content-type": "application/json", "cache-control": "no-store" }
const TEXT_TYPE = { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" }

const sendJson = (res: Http.ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}) => {
  const text = JSON.stringify(body)
  res.writeHead(status, { ...JSON_TYPE, "content-length": Buffer.byteLength(text), ...extra })
  res.end(text)
}

const unavailable = (snapshot: Snapshot) =>
  snapshot.status === "needs_login"
    ? { error: "needs_login", message: snapshot.lastError ?? "No valid grant. Run `strava-auth login`." }
    : {
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
export const health = (snapshot: Snapshot) => ({
  status: snapshot.status,
  expires_at: snapshot.tokens?.expiresAt ?? null,
  next_refresh_at: iso(snapshot.nextRefreshAt),
  last_refresh_at: iso(snapshot.lastRefreshAt),
  consecutive_failures: snapshot.consecutiveFailures,
  last_error: snapshot.lastError ?? null,
  athlete_id: snapshot.tokens?.athlete?.id ?? null,
  scope: snapshot.tokens?.scopes.join(",") ?? null
})

const routes: Record<string, string> = { "/token": "GET", "/token.json": "GET", "/health": "GET", "/refresh": "POST" }

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
    const url = req.url ?? "/"
    const query = url.indexOf("?")
    const path = query >= 0 ? url.slice(0, query) : url
    if (path === "/token" && req.method === "GET") {
      const snapshot = handlers.snapshot()
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
    other(handlers, req, res, path)
  }
}

const other = (handlers: Handlers, req: Http.IncomingMessage, res: Http.ServerResponse, path: string): void => {
  const allowed = routes[path]
  if (allowed === undefined) {
    return sendJson(res, 404, {
      error: "not_found",
      message: `No ${path} here. Try /token, /token.json, /health or POST /refresh.`
    })
  }
  if (req.method !== allowed) {
    return sendJson(res, 405, { error: "method_not_allowed", message: `${path} takes ${allowed}.` }, { allow: allowed })
  }
  if (req.headers["content-length"] !== undefined && req.headers["content-length"] !== "0") {
    res.setHeader("connection", "close")
    return sendJson(res, 413, { error: "body_not_allowed", message: "Requests take no body." })
  }
  const snapshot = handlers.snapshot()
  switch (path) {
    case "/token.json":
      return Refresher.servable(snapshot, handlers.now())
        ? sendJson(res, 200, Refresher.tokenJson(snapshot.tokens))
        : sendJson(res, 503, unavailable(snapshot))
    case "/health": {
      return sendJson(res, Refresher.servable(snapshot, handlers.now()) ? 200 : 503, health(snapshot))
    }
    case "/refresh":
      handlers.refresh().then((result) => {
        const after = handlers.snapshot()
        if (result.ok && Refresher.servable(after, handlers.now())) {
          sendJson(res, 200, Refresher.tokenJson(after.tokens))
        } else {
          const error = result.ok ? undefined : result.error
          sendJson(res, 503, {
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
 * Listens on `socketPath` until the scope closes, then closes and removes the socket.
 *
 * @since 0.1.0
 * @category constructors
 */
export const serve = (
  socketPath: string,
  handlers: Handlers
): Effect.Effect<Http.Server, DaemonFailure, Scope.Scope> =>
  Effect.gen(function*() {
    const dir = Path.dirname(socketPath)
    yield* Effect.try({
      try: () => {
        if (!Fs.existsSync(dir)) Fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
      },
      catch: (e) =>
        new DaemonFailure({ detail: `cannot create the socket directory ${dir}: ${String(e)}`, transient: false })
    })
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
    const server = Http.createServer({ maxHeaderSize: 8 * 1024, requestTimeout: 5000, headersTimeout: 5000 })
    server.keepAliveTimeout = 5000
    server.on("request", handler(handlers))
    server.on("clientError", (error: NodeJS.ErrnoException, socket) => {
      const status = error.code === "HPE_HEADER_OVERFLOW"
        ? "431 Request Header Fields Too Large"
        : error.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? "408 Request Timeout"
        : "400 Bad Request"
      if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`)
      else socket.destroy()
    })
    yield* Effect.acquireRelease(
      Effect.async<void, DaemonFailure>((resume) => {
        const previous = process.umask(0o177) // the socket is born 0600
        server.once("error", (error) => {
          process.umask(previous)
          resume(
            Effect.fail(
              new DaemonFailure({ detail: `cannot listen on ${socketPath}: ${error.message}`, transient: false })
            )
          )
        })
        server.listen({ path: socketPath }, () => {
          process.umask(previous)
          Fs.chmodSync(socketPath, 0o600)
          resume(Effect.void)
        })
      }),
      () =>
        Effect.async<void>((resume) => {
          server.close(() => resume(Effect.void))
          server.closeAllConnections()
        }).pipe(Effect.zipRight(Effect.sync(() => Fs.rmSync(socketPath, { force: true }))))
    )
    return server
  })
