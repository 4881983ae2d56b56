/**
 * Spans out over OTLP/HTTP (JSON) when `OTEL_EXPORTER_OTLP_ENDPOINT` is set: every OAuth step
 * (`StravaOAuth.*`), token-file operation (`TokenFile.*`) and refresh (`RefreshEngine.*`) this process runs,
 * through `@effect/opentelemetry`'s `Otlp.layerJson`, which speaks OTLP over the platform's HttpClient (no
 * OpenTelemetry SDK at run time, none in the bundle). Attributes carry the grant's key, never a token or a
 * secret. Without the variable nothing is exported.
 *
 * @internal The command's own, not part of `@strava-auth/daemon`'s entry.
 * @since 0.2.0
 */
import * as Otlp from "@effect/opentelemetry/Otlp"
import * as Layer from "effect/Layer"

import * as Network from "./Network.js"

/**
 * The exporter for this environment (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`), or nothing.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (env: Readonly<Record<string, string | undefined>> = process.env): Layer.Layer<never> => {
  const endpoint = env["OTEL_EXPORTER_OTLP_ENDPOINT"]?.trim()
  if (endpoint === undefined || endpoint === "") return Layer.empty
  const serviceName = env["OTEL_SERVICE_NAME"]?.trim()
  return Otlp.layerJson({
    baseUrl: endpoint.replace(/\/+$/, ""),
    resource: { serviceName: serviceName === undefined || serviceName === "" ? "strava-auth" : serviceName },
    tracerExportInterval: "1 second",
    shutdownTimeout: "3 seconds"
  }).pipe(Layer.provide(Network.layer))
}
