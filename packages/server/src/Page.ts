/**
 * The pages the routes answer with: what happened and what to do, in plain HTML an app can restyle by
 * replacing this module's `render` in its options. Every value is escaped.
 *
 * @since 0.3.0
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"

/**
 * Escapes text for HTML content and attribute values.
 *
 * @since 0.3.0
 * @category rendering
 */
export const escape = (value: string): string =>
  value.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" })[c]!)

/**
 * @since 0.3.0
 * @category models
 */
export interface Message {
  readonly status: number
  /** Short: what happened. */
  readonly title: string
  /** Longer: why, and what to do. */
  readonly detail: string
  /** Links offered below, e.g. to connect again or back to the app. */
  readonly links?: ReadonlyArray<{ readonly href: string; readonly text: string }> | undefined
}

/**
 * A page for a message, with headers that keep it out of caches and frames.
 *
 * @since 0.3.0
 * @category rendering
 */
export const render = (message: Message): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.text(
    `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(message.title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;line-height:1.5}
a{color:#fc4c02}</style></head>
<body>
<h1 id="title">${escape(message.title)}</h1>
<p id="detail">${escape(message.detail)}</p>
${(message.links ?? []).map((link) => `<p><a href="${escape(link.href)}">${escape(link.text)}</a></p>`).join("\n")}
</body>
</html>
`,
    {
      status: message.status,
      contentType: "text/html; charset=utf-8",
      headers: {
        "cache-control": "no-store",
        "x-frame-options": "DENY",
        "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        "referrer-policy": "no-referrer"
      }
    }
  )
