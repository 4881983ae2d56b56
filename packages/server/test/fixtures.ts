import * as ChildProcess from "node:child_process"
import * as Http from "node:http"
import * as Path from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"

import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import type * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as StravaConfig from "@strava-auth/core/StravaConfig"
import * as StravaOAuth from "@strava-auth/core/StravaOAuth"
import { TokenSet } from "@strava-auth/core/Token"
import { MockServer, MockStrava } from "@strava-auth/testing"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { inject } from "vitest"

import * as StravaServer from "../src/StravaServer.js"
import * as Webhook from "../src/Webhook.js"

/** The suite's server (started by postgres.setup.ts), as an admin URL. */
export const serverUrl = (): string => inject("postgresUrl")

const urlFor = (database: string) => {
  const url = new URL(serverUrl())
  url.pathname = `/${database}`
  return Redacted.make(url.toString())
}

const admin = PgClient.layer({ url: Redacted.make(serverUrl()), maxConnections: 1 })

/**
 * A database of the test's own, dropped when the scope closes: its URL. Each test gets a clean one, so tests
 * can run in any order.
 */
export const freshDatabase: Effect.Effect<Redacted.Redacted<string>, never, Scope.Scope> = Effect.gen(function*() {
  const name = `t_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
  yield* Effect.acquireRelease(
    Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`CREATE DATABASE ${name}`)).pipe(
      Effect.provide(admin),
      Effect.orDie
    ),
    () =>
      Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).pipe(
        Effect.provide(admin),
        Effect.orDie
      )
  )
  return urlFor(name)
})

/** A pool on `url`: one per simulated replica. */
export const pool = (url: Redacted.Redacted<string>, maxConnections = 10) =>
  PgClient.layer({ url, maxConnections, connectTimeout: Duration.seconds(5) })

/** A pool, as a layer, on a fresh database of the test's own. */
export const freshPool = Layer.unwrapScoped(Effect.map(freshDatabase, (url) => pool(url)))

export const set = (name: string, expiresAt = 1_900_000_000, athleteId?: number) =>
  new TokenSet({
    tokenType: "Bearer",
    accessToken: Redacted.make(`access-${name}`),
    refreshToken: Redacted.make(`refresh-${name}`),
    expiresAt,
    scopes: ["read", "activity:read"],
    ...(athleteId === undefined ? {} : { athlete: { id: athleteId, firstname: `First${athleteId}` } })
  })

/** One replica of a web app: its own pool and services, its routes served on 127.0.0.1 (a free port). */
export const serveReplica = <E>(
  options: {
    readonly database: Redacted.Redacted<string>
    readonly mock: { readonly url: string; readonly apiUrl: string }
    readonly app: { readonly clientId: string; readonly clientSecret: string }
    readonly router: (
      publicUrl: string,
      wakeup: Webhook.Wakeup | undefined
    ) => HttpRouter.HttpRouter<E, HttpServerRequest.HttpServerRequest | StravaServer.Services | SqlClient.SqlClient>
    /** Starts this replica's webhook processor. */
    readonly processor?: Webhook.ProcessorOptions
    /** The public URL routes put in the redirect URI; default this replica's own. */
    readonly publicUrl?: string
  }
) =>
  Effect.gen(function*() {
    const services = StravaServer.layer({
      config: {
        clientId: options.app.clientId,
        clientSecret: options.app.clientSecret,
        baseUrl: options.mock.url,
        apiUrl: options.mock.apiUrl,
        retries: 0
      }
    }).pipe(Layer.provideMerge(Layer.merge(pool(options.database), FetchHttpClient.layer)))
    const context = yield* Layer.build(
      Layer.merge(NodeHttpServer.layer(() => Http.createServer(), { port: 0, host: "127.0.0.1" }), services)
    )
    const server = Context.get(context, HttpServer.HttpServer)
    const address = server.address as HttpServer.TcpAddress
    const url = `http://127.0.0.1:${address.port}`
    const wakeup = options.processor === undefined
      ? undefined
      : yield* Webhook.processor(options.processor).pipe(Effect.provide(context))
    yield* HttpServer.serveEffect(options.router(options.publicUrl ?? url, wakeup)).pipe(Effect.provide(context))
    return { url, context }
  }).pipe(Effect.orDie)

/** A browser: fetch with a cookie jar, redirects not followed. */
export const browser = () => {
  const jar = new Map<string, string>()
  const request = async (url: string, init: RequestInit = {}) => {
    const cookie = [...jar.entries()].map(([k, v]) => `${k}=${v}`).join("; ")
    const response = await fetch(url, {
      ...init,
      redirect: "manual",
      headers: { ...(init.headers as Record<string, string> | undefined), ...(cookie === "" ? {} : { cookie }) }
    })
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(";")
      const [name, ...value] = pair!.split("=")
      const v = value.join("=")
      if (v === "" || /max-age=0/i.test(line)) jar.delete(name!.trim())
      else jar.set(name!.trim(), v)
    }
    return { status: response.status, location: response.headers.get("location"), text: await response.text() }
  }
  return { jar, request }
}

/** The example app's build (`pnpm build` makes it): what an operator runs as a replica. */
export const exampleMain = Path.join(Path.dirname(fileURLToPath(import.meta.url)), "../build/example/main.js")

export interface Replica {
  readonly url: string
  readonly child: ChildProcess.ChildProcess
}

/** Starts one replica; it is killed (if still running) when the scope closes. */
export const startReplica = (env: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<Replica>((resolve, reject) => {
        const child = ChildProcess.spawn(process.execPath, [exampleMain], {
          env: { PATH: process.env["PATH"] ?? "", TMPDIR: process.env["TMPDIR"] ?? "/tmp", ...env },
          stdio: ["ignore", "pipe", "pipe"]
        })
        let stderr = ""
        child.stderr!.on("data", (d) => (stderr += String(d)))
        child.once("exit", (code) => reject(new Error(`a replica exited (${code}) before listening: ${stderr}`)))
        createInterface({ input: child.stdout! }).once("line", (line) => {
          const match = /^listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(line)
          if (match === null) reject(new Error(`unexpected first line: ${line}`))
          else resolve({ url: match[1]!, child })
        })
      })
    ),
    (replica) =>
      Effect.promise(() =>
        replica.child.exitCode !== null || replica.child.signalCode !== null
          ? Promise.resolve()
          : new Promise<void>((resolve) => {
            replica.child.once("exit", () => resolve())
            replica.child.kill("SIGTERM")
          })
      )
  )

/** Polls `check` until it holds or `millis` pass (no sleeping to wait for a thing: a deadline). */
export const within = (millis: number, check: Effect.Effect<boolean>) =>
  Effect.gen(function*() {
    const deadline = Date.now() + millis
    while (Date.now() < deadline) {
      if (yield* check) return true
      yield* Effect.sleep("25 millis")
    }
    return yield* check
  })

/** The mock Strava as a loopback server, for the scope. */
export const mockServer = (options: MockServer.Options = {}) =>
  Effect.map(Layer.build(MockServer.layer(options)), (context) => ({
    server: Context.get(context, MockServer.MockServer),
    mock: Context.get(context, MockStrava.MockStrava)
  }))

/** The environment of an example app replica against `server`, on `database`. */
export const appEnv = (
  server: MockServer.MockServerShape,
  mock: MockStrava.MockStravaShape,
  database: Redacted.Redacted<string>
): Record<string, string> => ({
  DATABASE_URL: Redacted.value(database),
  PORT: "0",
  STRAVA_CLIENT_ID: mock.app.clientId,
  STRAVA_CLIENT_SECRET: mock.app.clientSecret,
  STRAVA_BASE_URL: server.url,
  STRAVA_API_URL: server.apiUrl,
  STRAVA_WEBHOOK_VERIFY_TOKEN: "verify-token-for-tests"
})

/** An athlete connects through a running app, as a browser would (the start, Strava's answer, the callback). */
export const connectThroughApp = (appUrl: string, mock: MockStrava.MockStravaShape, athleteId: number) =>
  Effect.gen(function*() {
    const start = yield* Effect.promise(() => fetch(`${appUrl}/strava/connect`, { redirect: "manual" }))
    const cookie = start.headers.getSetCookie()[0]!.split(";")[0]!
    const callback = new URL(yield* mock.approve(start.headers.get("location")!, { athleteId }).pipe(Effect.orDie))
    const done = yield* Effect.promise(() =>
      fetch(`${appUrl}${callback.pathname}${callback.search}`, { headers: { cookie }, redirect: "manual" })
    )
    return done.status
  })

/** Core's OAuth service against the mock server (fetch), e.g. to connect athletes or subscribe from a test. */
export const oauthAgainst = (server: MockServer.MockServerShape, mock: MockStrava.MockStravaShape) =>
  StravaOAuth.make.pipe(
    Effect.provide(FetchHttpClient.layer),
    Effect.provide(StravaConfig.layer({
      clientId: mock.app.clientId,
      clientSecret: mock.app.clientSecret,
      baseUrl: server.url,
      apiUrl: server.apiUrl
    }))
  )
