/**
 * Tokens at rest, optionally encrypted: AES-256-GCM through WebCrypto, a random 96-bit IV per write, the
 * athlete's id and the column's name as additional data (a ciphertext copied to another athlete's row, or
 * from the refresh column to the access column, does not decrypt), and the key's id stored beside the
 * ciphertext so that keys can be rotated.
 *
 * `STRAVA_AUTH_ENCRYPTION_KEY` holds one key or several, comma-separated, each `ID:BASE64` (32 bytes, e.g.
 * `openssl rand -base64 32`) or a bare `BASE64` (its id is then the first 8 hex digits of its SHA-256). The
 * first key encrypts; every key listed decrypts. To rotate: put the new key first and keep the old one after
 * it; rows move to the new key as they are next written (every refresh writes), or at once with
 * `SqlGrantStore.reencrypt`. Without the variable, tokens are stored as they are, as in the daemon's file.
 *
 * @since 0.3.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Encoding from "effect/Encoding"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

/**
 * A stored token could not be decrypted (an unknown key id, a wrong key, a tampered or moved ciphertext).
 *
 * @since 0.3.0
 * @category errors
 */
export class CipherError extends Schema.TaggedError<CipherError>()("CipherError", {
  detail: Schema.String
}) {
  /** @since 0.3.0 */
  override get message(): string {
    return this.detail
  }
}

/**
 * @since 0.3.0
 * @category models
 */
export interface TokenCipher {
  /** The id written beside new ciphertexts; `null` when tokens are stored as they are. */
  readonly keyId: string | null
  readonly encrypt: (plaintext: string, associated: string) => Effect.Effect<string>
  /** `keyId` is the stored one (`null`: the value was stored as it is). */
  readonly decrypt: (
    keyId: string | null,
    stored: string,
    associated: string
  ) => Effect.Effect<string, CipherError>
}

/**
 * Tokens stored as they are.
 *
 * @since 0.3.0
 * @category constructors
 */
export const plain: TokenCipher = {
  keyId: null,
  encrypt: (plaintext) => Effect.succeed(plaintext),
  decrypt: (keyId, stored) =>
    keyId === null
      ? Effect.succeed(stored)
      : Effect.fail(
        new CipherError({
          detail: `a token is encrypted with key "${keyId}", and no STRAVA_AUTH_ENCRYPTION_KEY is set: ` +
            `set the key it was written with.`
        })
      )
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/**
 * SHA-256 as hex (WebCrypto): the digests the server stores instead of values (connect states, browser
 * nonces, webhook event identities) and the id of a key given without one.
 *
 * @since 0.3.0
 * @category digests
 */
export const sha256Hex = (value: string | Uint8Array): Effect.Effect<string> =>
  Effect.promise(() =>
    globalThis.crypto.subtle.digest(
      "SHA-256",
      typeof value === "string" ? encoder.encode(value) : Uint8Array.from(value)
    )
  ).pipe(Effect.map((bytes) => Encoding.encodeHex(new Uint8Array(bytes))))

interface Key {
  readonly id: string
  readonly key: CryptoKey
}

const importKey = (bytes: Uint8Array) =>
  Effect.promise(() =>
    globalThis.crypto.subtle.importKey("raw", Uint8Array.from(bytes), "AES-GCM", false, ["encrypt", "decrypt"])
  )

/**
 * Reads the key list (see the module's documentation). The message of a bad list says what is wrong and never
 * repeats a key.
 *
 * @since 0.3.0
 * @category parsing
 */
export const parseKeys = (
  value: Redacted.Redacted<string>
): Effect.Effect<ReadonlyArray<{ readonly id: string; readonly bytes: Uint8Array }>, string> =>
  Effect.gen(function*() {
    const parts = Redacted.value(value).split(",").map((part) => part.trim()).filter((part) => part !== "")
    if (parts.length === 0) return yield* Effect.fail("STRAVA_AUTH_ENCRYPTION_KEY is empty; unset it or give a key.")
    const keys: Array<{ id: string; bytes: Uint8Array }> = []
    for (const [index, part] of parts.entries()) {
      const colon = part.indexOf(":")
      const label = colon === -1 ? undefined : part.slice(0, colon)
      const encoded = colon === -1 ? part : part.slice(colon + 1)
      const where = `STRAVA_AUTH_ENCRYPTION_KEY, key ${index + 1}`
      if (label !== undefined && !/^[A-Za-z0-9_-]{1,32}$/.test(label)) {
        return yield* Effect.fail(`${where}: an id is 1 to 32 letters, digits, "-" or "_".`)
      }
      const bytes = Encoding.decodeBase64(encoded)
      if (Either.isLeft(bytes) || bytes.right.length !== 32) {
        return yield* Effect.fail(
          `${where}: not 32 bytes of base64 (make one with \`openssl rand -base64 32\`).`
        )
      }
      const id = label ?? (yield* sha256Hex(bytes.right)).slice(0, 8)
      if (keys.some((k) => k.id === id)) return yield* Effect.fail(`${where}: the id "${id}" is given twice.`)
      keys.push({ id, bytes: Uint8Array.from(bytes.right) })
    }
    return keys
  })

/**
 * A cipher over a key list: the first key encrypts, all decrypt.
 *
 * @since 0.3.0
 * @category constructors
 */
export const make = (value: Redacted.Redacted<string>): Effect.Effect<TokenCipher, string> =>
  Effect.gen(function*() {
    const parsed = yield* parseKeys(value)
    const keys: Array<Key> = []
    for (const { bytes, id } of parsed) keys.push({ id, key: yield* importKey(bytes) })
    const current = keys[0]!
    return {
      keyId: current.id,
      encrypt: (plaintext, associated) =>
        Effect.promise(async () => {
          const iv = globalThis.crypto.getRandomValues(new Uint8Array(12))
          const sealed = await globalThis.crypto.subtle.encrypt(
            { name: "AES-GCM", iv, additionalData: encoder.encode(associated) },
            current.key,
            encoder.encode(plaintext)
          )
          return `${Encoding.encodeBase64Url(iv)}.${Encoding.encodeBase64Url(new Uint8Array(sealed))}`
        }),
      decrypt: (keyId, stored, associated) => {
        if (keyId === null) return Effect.succeed(stored) // written before encryption was turned on
        const key = keys.find((k) => k.id === keyId)
        if (key === undefined) {
          return Effect.fail(
            new CipherError({
              detail: `a token is encrypted with key "${keyId}", which STRAVA_AUTH_ENCRYPTION_KEY does not list: ` +
                `add it after the current key.`
            })
          )
        }
        const [iv, sealed] = stored.split(".").map((part) => Encoding.decodeBase64Url(part))
        if (iv === undefined || sealed === undefined || Either.isLeft(iv) || Either.isLeft(sealed)) {
          return Effect.fail(new CipherError({ detail: `a token stored under key "${keyId}" is not a ciphertext.` }))
        }
        return Effect.tryPromise({
          try: () =>
            globalThis.crypto.subtle.decrypt(
              { name: "AES-GCM", iv: Uint8Array.from(iv.right), additionalData: encoder.encode(associated) },
              key.key,
              Uint8Array.from(sealed.right)
            ),
          catch: () =>
            new CipherError({
              detail: `a token stored under key "${keyId}" does not decrypt: the key is not the one it was ` +
                `written with, or the row was altered or copied from another athlete.`
            })
        }).pipe(Effect.map((bytes) => decoder.decode(bytes)))
      }
    } satisfies TokenCipher
  })
