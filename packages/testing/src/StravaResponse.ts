/**
 * The bytes Strava answers with: its error envelope (not RFC 6749: no `error` field), its HTML outage page and
 * its 429.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 * @category models
 */
export interface Response {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

/**
 * A JSON response.
 *
 * @since 0.1.0
 * @category responses
 */
export const json = (status: number, body: unknown, headers: Record<string, string> = {}): Response => ({
  status,
  headers: { "content-type": "application/json; charset=utf-8", ...headers },
  body: JSON.stringify(body)
})

/**
 * Strava's error envelope.
 *
 * @since 0.1.0
 * @category responses
 */
export const envelope = (
  status: number,
  message: string,
  resource: string,
  field: string,
  code: string,
  headers: Record<string, string> = {}
): Response => json(status, { message, errors: [{ resource, field, code }] }, headers)

/**
 * @since 0.1.0
 * @category responses
 */
export const badRequest = (resource: string, field: string, code: string) =>
  envelope(400, "Bad Request", resource, field, code)
/**
 * @since 0.1.0
 * @category responses
 */
export const authorizationError = (
  resource: string,
  field: string,
  code: string,
  headers: Record<string, string> = {}
) => envelope(401, "Authorization Error", resource, field, code, headers)

/**
 * An outage page, as Strava's edge serves it: HTML, not JSON.
 *
 * @since 0.1.0
 * @category responses
 */
export const outagePage = (status: number): Response => ({
  status,
  headers: { "content-type": "text/html; charset=utf-8" },
  body: `<!DOCTYPE html><html><head><title>Strava | ${status}</title></head><body><h1>We're sorry, but ` +
    `something went wrong (${status}).</h1><p>We've been notified about this issue and we'll take a look at it ` +
    `shortly.</p></body></html>`
})

/**
 * The 429 Strava answers past a limit.
 *
 * @since 0.1.0
 * @category responses
 */
export const rateLimited = (headers: Record<string, string>): Response =>
  envelope(429, "Rate Limit Exceeded", "Application", "rate limit", "exceeded", headers)

/**
 * The page Strava shows instead of its authorize page when the app is at its athlete cap (the 2026
 * program): a 403, before any code, with no redirect back to the app.
 *
 * @since 0.3.0
 * @category responses
 */
export const athleteLimitPage: Response = {
  status: 403,
  headers: { "content-type": "text/html; charset=utf-8" },
  body: `<!DOCTYPE html><html><head><title>Strava | 403</title></head><body><h1>Error 403: Limit of connected ` +
    `athletes exceeded</h1><p>Error 403: Limit of connected athletes exceeded. This app has exceeded the limit of ` +
    `connected athletes.</p></body></html>`
}
