/**
 * Runs the example web app (`pnpm web-app`), configured only by its environment, as an operator runs a
 * replica:
 *
 * | variable | meaning | default |
 * |---|---|---|
 * | `PORT` | the port (0: any free port) | `3000` |
 * | `HOST` | the address to listen on | `127.0.0.1` |
 * | `PUBLIC_URL` | the app's public origin (the redirect URI is `{PUBLIC_URL}/strava/callback`) | `http://127.0.0.1:PORT` |
 * | `DATABASE_URL` | `postgres://...`, any PostgreSQL from 15 on | unset: an embedded PostgreSQL |
 * | `STRAVA_AUTH_DATA_DIR` | the embedded PostgreSQL's directory | `$XDG_STATE_HOME/strava-auth/web-app` |
 * | `STRAVA_CLIENT_ID`, `STRAVA_CLIENT_SECRET` / `_FILE`, `STRAVA_BASE_URL`, `STRAVA_API_URL` | the app at Strava | |
 * | `STRAVA_AUTH_REFRESH_MARGIN` | refresh when this little is left (`45m`) | `45m` |
 * | `STRAVA_AUTH_ENCRYPTION_KEY` | tokens at rest encrypted (`TokenCipher`) | unset: stored as they are |
 * | `STRAVA_WEBHOOK_VERIFY_TOKEN` | the push subscription's verify token | required |
 * | `STRAVA_WEBHOOK_SUBSCRIPTION_ID` | the app's subscription id (events for others are dropped) | unset |
 *
 * The first line on stdout is `listening on http://127.0.0.1:PORT`. A configuration error is one line on
 * stderr that says what to fix, and exit code 78.
 *
 * @since 0.3.0
 */
import * as Http from "node:http"
import * as Os from "node:os"
import * as Path from "node:path"

import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as StravaConfig from "@strava-auth/core/StravaConfig"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"

import * as Database from "../Database.js"
import * as EmbeddedPostgres from "../EmbeddedPostgres.js"
import * as StravaServer from "../StravaServer.js"
import * as TokenCipher from "../TokenCipher.js"
import * as WebApp from "./WebApp.js"

class Misconfigured extends Error {}

const fail = (message: string) => Effect.die(new Misconfigured(message))

const main = Effect.gen(function*() {
  const read = (name: string) => Config.option(Config.string(name))
  const port = Number(Option.getOrElse(yield* read("PORT"), () => "3000"))
  if (!Number.isInteger(port) || port < 0 || port > 65535) return yield* fail("PORT must be 0 to 65535.")
  const host = Option.getOrElse(yield* read("HOST"), () => "127.0.0.1")
  const strava = yield* StravaConfig.fromEnv.pipe(
    Effect.catchAll((error) => fail(error.message.split("\n")[0] ?? "the Strava settings are incomplete"))
  )
  const verifyToken = yield* read("STRAVA_WEBHOOK_VERIFY_TOKEN")
  if (Option.isNone(verifyToken) || verifyToken.value.length < 8) {
    return yield* fail(
      "STRAVA_WEBHOOK_VERIFY_TOKEN is not set (or shorter than 8 characters): set it to the verify token of " +
        "your push subscription (any random string you also give when creating it)."
    )
  }
  const subscriptionText = yield* read("STRAVA_WEBHOOK_SUBSCRIPTION_ID")
  const subscriptionId = Option.map(subscriptionText, Number)
  if (Option.isSome(subscriptionId) && !Number.isInteger(subscriptionId.value)) {
    return yield* fail("STRAVA_WEBHOOK_SUBSCRIPTION_ID must be a number (see `strava-auth webhook view`).")
  }
  const marginText = yield* read("STRAVA_AUTH_REFRESH_MARGIN")
  const margin = Option.map(marginText, StravaConfig.parseDuration)
  if (Option.isSome(margin) && Option.isNone(margin.value)) {
    return yield* fail(`STRAVA_AUTH_REFRESH_MARGIN takes a duration such as 45m or 1h.`)
  }
  const key = yield* Config.option(Config.redacted("STRAVA_AUTH_ENCRYPTION_KEY"))
  const cipher = Option.isNone(key)
    ? undefined
    : yield* TokenCipher.make(key.value).pipe(Effect.catchAll((message) => fail(message)))

  // The database: DATABASE_URL, or an embedded PostgreSQL in a directory of the app's own.
  const databaseUrl = yield* Config.option(Config.redacted("DATABASE_URL"))
  let url: Redacted.Redacted<string>
  if (Option.isSome(databaseUrl)) {
    const problem = Database.checkUrl(databaseUrl.value)
    if (problem !== undefined) return yield* fail(problem)
    url = databaseUrl.value
  } else {
    const state = process.env["XDG_STATE_HOME"] ?? Path.join(Os.homedir(), ".local", "state")
    const directory = Option.getOrElse(
      yield* read("STRAVA_AUTH_DATA_DIR"),
      () => Path.join(state, "strava-auth", "web-app")
    )
    const running = yield* EmbeddedPostgres.start(directory).pipe(Effect.catchAll((error) => fail(error.message)))
    yield* Effect.logInfo("using an embedded PostgreSQL").pipe(Effect.annotateLogs({ directory }))
    url = running.url
  }

  const services = StravaServer.layer({
    config: strava,
    margin: Option.getOrUndefined(Option.flatten(margin)),
    cipher
  }).pipe(
    // undici directly: lighter per call than fetch, which is undici behind a WHATWG layer.
    Layer.provideMerge(Layer.merge(Database.layerPg(url), NodeHttpClient.layerUndici))
  )
  const serverLayer = NodeHttpServer.layer(() => Http.createServer(), { port, host })
  return yield* Effect.gen(function*() {
    const server = yield* HttpServer.HttpServer
    const address = server.address as HttpServer.TcpAddress
    const shown = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host
    const origin = `http://${shown}:${address.port}`
    const publicUrl = Option.getOrElse(yield* read("PUBLIC_URL"), () => origin)
    const router = yield* WebApp.make({
      publicUrl,
      webhookVerifyToken: Redacted.make(verifyToken.value),
      webhookSubscriptionId: Option.getOrUndefined(subscriptionId)
    })
    yield* HttpServer.serveEffect(router)
    process.stdout.write(`listening on ${origin}\n`)
    return yield* Effect.never
  }).pipe(
    Effect.provide(Layer.merge(serverLayer, services)),
    Effect.catchTags({
      MigrationFailed: (error) => fail(error.message),
      SqlError: () => fail("the database did not answer: check DATABASE_URL and that the server runs."),
      ServeError: () => fail(`could not listen on ${host}:${port}: is the port in use? Set PORT (0: any free port).`)
    })
  )
}).pipe(Effect.scoped)

main.pipe(
  Effect.catchAllDefect((defect) =>
    defect instanceof Misconfigured
      ? Effect.sync(() => {
        process.stderr.write(`strava-auth example: ${defect.message}\n`)
        process.exit(78)
      })
      : Effect.die(defect)
  ),
  Effect.provide(NodeContext.layer),
  // Logs go to stderr (logfmt): stdout's first line is the address.
  Effect.provide(Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.logfmtLogger))),
  NodeRuntime.runMain({ disablePrettyLogger: true })
)
