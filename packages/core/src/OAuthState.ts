/**
 * The `state` parameter, used as the CSRF token of a login: 32 random bytes, base64url, compared in
 * constant time. Strava documents no PKCE, so `state` is the only thing binding a redirect to its login.
 *
 * Randomness comes from Web Crypto (`globalThis.crypto`), present in Node 20+, Deno, Bun and browsers.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Encoding from "effect/Encoding"

/**
 * Encodes bytes as unpadded base64url (`Encoding.encodeBase64Url`).
 *
 * @since 0.1.0
 * @category encoding
 */
export const base64url = (bytes: Uint8Array): string => Encoding.encodeBase64Url(bytes)

/**
 * A fresh state: 32 bytes from a cryptographic source, base64url (43 characters).
 *
 * @since 0.1.0
 * @category constructors
 */
export const generate: Effect.Effect<string> = Effect.sync(() =>
  base64url(globalThis.crypto.getRandomValues(new Uint8Array(32)))
)

/**
 * Compares two states in time that depends only on the expected value's length, so a forged redirect
 * learns nothing from how fast it is refused.
 *
 * @since 0.1.0
 * @category predicates
 */
export const equals = (expected: string, received: string): boolean => {
  const a = new TextEncoder().encode(expected)
  const b = new TextEncoder().encode(received)
  let diff = a.length ^ b.length
  for (let i = 0; i < a.length; i++) {
    diff |= a[i]! ^ (b[i] ?? 0)
  }
  return diff === 0
}
