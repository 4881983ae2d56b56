/**
 * The command's HTTP client: undici, through the proxy the environment names. Node's own `fetch` ignores
 * `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` (and their lower-case forms); undici's `EnvHttpProxyAgent` honours
 * them as curl does: `https://` requests go through `HTTPS_PROXY`, `http://` ones through `HTTP_PROXY`, hosts
 * in `NO_PROXY` directly. Without those variables it is a plain connection pool.
 *
 * @internal The command's own, not part of `@strava-auth/daemon`'s entry.
 * @since 0.2.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { EnvHttpProxyAgent } from "undici"

/**
 * The dispatcher, closed with the layer's scope.
 *
 * @since 0.2.0
 * @category layers
 */
export const dispatcher: Layer.Layer<NodeHttpClient.Dispatcher> = Layer.scoped(
  NodeHttpClient.Dispatcher,
  Effect.acquireRelease(
    Effect.sync(() => new EnvHttpProxyAgent()),
    (agent) => Effect.promise(() => agent.destroy())
  )
)

/**
 * @since 0.2.0
 * @category layers
 */
export const layer: Layer.Layer<HttpClient.HttpClient> = NodeHttpClient.layerUndiciWithoutDispatcher.pipe(
  Layer.provide(dispatcher)
)
