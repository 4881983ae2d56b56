/**
 * The token file: the one place a grant is stored.
 *
 * Format (JSON, Strava's field names, so `jq -r .access_token token.json` works):
 * `version`, `token_type`, `access_token`, `refresh_token`, `expires_at` (epoch seconds), `scope` (granted,
 * comma list), `athlete` (summary), `updated_at` (ISO time of the write).
 *
 * Invariants:
 * - Written atomically: a temp file in the same directory (created `wx`, mode 0600), written, fsynced,
 *   renamed over the target, then the directory fsynced. A reader sees the old file or the new one, never a
 *   mix; after a crash at any point the file parses and holds a refresh token Strava issued.
 * - Mode 0600 in a 0700 directory (the directory is created 0700 when missing). A file readable by group
 *   or others is refused with the `chmod` that fixes it; we never widen or silently narrow permissions.
 * - A malformed file is reported and left alone: nothing is ever overwritten with less.
 * - Refreshes by different processes (the daemon, `strava-auth token`) are serialized by a lock file next to
 *   the token file (`token.json.lock`, holding the owner's pid, hard-linked into place so it never exists
 *   empty; a lock whose pid is gone is stale and taken over).
 *
 * @since 0.1.0
 */
import * as Fs from "node:fs"
import * as FsP from "node:fs/promises"
import * as Path from "node:path"

import * as FileSystem from "@effect/platform/FileSystem"
import type { Token } from "@strava-auth/core"
import { GrantStore, StravaScope, Token as TokenModule } from "@strava-auth/core"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Encoding from "effect/Encoding"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

import { TokenFileError } from "./DaemonError.js"
import * as FileLock from "./FileLock.js"
import * as PrivateDirectory from "./PrivateDirectory.js"

/**
 * The file's current format version.
 *
 * @since 0.1.0
 * @category constants
 */
export const version = 1

/**
 * The file's JSON.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TokenFileJson = Schema.Struct({
  version: Schema.Literal(version),
  token_type: Schema.String,
  access_token: Schema.Redacted(Schema.NonEmptyString),
  refresh_token: Schema.Redacted(Schema.NonEmptyString),
  expires_at: Schema.Int,
  scope: Schema.String,
  athlete: Schema.optional(Schema.NullOr(TokenModule.SummaryAthlete)),
  updated_at: Schema.String
})

const decodeFile = Schema.decodeUnknownEither(Schema.parseJson(TokenFileJson), { errors: "all" })

/**
 * Serializes a token set (`updatedAt` in epoch milliseconds).
 *
 * @since 0.1.0
 * @category encoding
 */
export const encode = (tokens: Token.TokenSet, updatedAt: number): string =>
  JSON.stringify(
    {
      version,
      token_type: tokens.tokenType,
      access_token: Redacted.value(tokens.accessToken),
      refresh_token: Redacted.value(tokens.refreshToken),
      expires_at: tokens.expiresAt,
      scope: StravaScope.format(tokens.scopes),
      athlete: tokens.athlete ?? null,
      updated_at: new Date(updatedAt).toISOString()
    },
    null,
    2
  ) + "\n"

/**
 * Parses the file's text, or says which fields are wrong (never their values).
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = (path: string, text: string): Effect.Effect<Token.TokenSet, TokenFileError> => {
  const parsed = decodeFile(text)
  if (parsed._tag === "Left") {
    const paths = ParseResult.ArrayFormatter.formatErrorSync(parsed.left).map((issue) =>
      issue.path.length === 0 ? "the JSON itself" : issue.path.map(String).join(".")
    )
    return Effect.fail(
      new TokenFileError({
        path,
        reason: "Malformed",
        detail: `it is not a strava-auth token file (bad or missing: ${Array.from(new Set(paths)).join(", ")}). ` +
          "It was left untouched; run `strava-auth login` to write a new one, or move it away."
      })
    )
  }
  const file = parsed.right
  return Effect.succeed(
    new TokenModule.TokenSet({
      tokenType: file.token_type,
      accessToken: file.access_token,
      refreshToken: file.refresh_token,
      expiresAt: file.expires_at,
      scopes: StravaScope.split(file.scope).filter(StravaScope.is),
      ...(file.athlete === undefined || file.athlete === null ? {} : { athlete: file.athlete })
    })
  )
}

const ioError = (path: string, what: string) => (error: { readonly message: string }) =>
  new TokenFileError({ path, reason: "Io", detail: `cannot ${what}: ${error.message}` })

/**
 * What a stat of the file says, to notice a change made by someone else.
 *
 * @since 0.1.0
 * @category models
 */
export interface Stamp {
  readonly ino: number
  readonly mtimeMs: number
  readonly size: number
}

/**
 * Whether two stamps are of the same version of the file.
 *
 * @since 0.1.0
 * @category reading
 */
export const sameStamp = (a: Stamp, b: Stamp): boolean =>
  a.ino === b.ino && a.mtimeMs === b.mtimeMs && a.size === b.size

/**
 * Reads the file: `None` when there is none; a `TokenFileError` for unsafe permissions or bad content.
 *
 * @since 0.1.0
 * @category reading
 */
export const read = (
  path: string
): Effect.Effect<Option.Option<Token.TokenSet>, TokenFileError, FileSystem.FileSystem> =>
  Effect.map(readStamped(path), Option.map(({ tokens }) => tokens))

/**
 * Reads the file with its stamp.
 *
 * @since 0.1.0
 * @category reading
 */
export const readStamped = (
  path: string
): Effect.Effect<Option.Option<{ tokens: Token.TokenSet; stamp: Stamp }>, TokenFileError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    // Never through a link, never blocking on a FIFO, never more than a token file can hold.
    const info = yield* fs.stat(path).pipe(
      Effect.map(Option.some),
      Effect.catchIf(
        (e) => e._tag === "SystemError" && e.reason === "NotFound",
        () => Effect.succeed(Option.none())
      ),
      Effect.mapError(ioError(path, "stat it"))
    )
    const link = yield* Effect.sync(() => {
      try {
        return Fs.lstatSync(path)
      } catch {
        return undefined
      }
    })
    if (link === undefined) return Option.none()
    if (link.isSymbolicLink()) {
      return yield* new TokenFileError({
        path,
        reason: "Permissions",
        detail: "it is a symbolic link; strava-auth reads and writes only a regular file there. Remove the link " +
          "(rm, which removes the link, not its target) and log in again, or point STRAVA_AUTH_TOKEN_FILE at a " +
          "file in a private directory."
      })
    }
    if (!link.isFile() || Option.isNone(info)) {
      return yield* new TokenFileError({
        path,
        reason: "Permissions",
        detail: "it is not a regular file (a FIFO, a device or a directory). Move it away and log in again."
      })
    }
    const mode = link.mode & 0o777
    if ((mode & 0o077) !== 0) {
      return yield* new TokenFileError({
        path,
        reason: "Permissions",
        detail: `it is readable by group or others (mode ${mode.toString(8).padStart(4, "0")}), so the tokens in it ` +
          `may have leaked. Run: chmod 600 ${path} (and consider strava-auth revoke, then login).`
      })
    }
    if (link.size > MAX_BYTES) {
      return yield* new TokenFileError({
        path,
        reason: "Malformed",
        detail: `it holds ${link.size} bytes, more than a token file ever does (${MAX_BYTES}). It was left ` +
          "untouched; move it away and log in again."
      })
    }
    const text = yield* Effect.tryPromise({
      try: () => readRegular(path),
      catch: (error) => ioError(path, "read it")(error as Error)
    })
    const tokens = yield* decode(path, text)
    return Option.some({ tokens, stamp: stampOf(info.value) })
  })

/** The most a token file holds: a few hundred bytes of tokens and an athlete summary. */
const MAX_BYTES = 64 * 1024

/** Reads a regular file without following a link or blocking, at most `MAX_BYTES`. */
const readRegular = async (path: string): Promise<string> => {
  const handle = await FsP.open(
    path,
    Fs.constants.O_RDONLY | (Fs.constants.O_NOFOLLOW ?? 0) | (Fs.constants.O_NONBLOCK ?? 0)
  )
  try {
    const info = await handle.stat()
    if (!info.isFile()) throw new Error("not a regular file")
    const buffer = Buffer.alloc(Math.min(MAX_BYTES, Math.max(1, info.size)))
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0)
    return buffer.subarray(0, bytesRead).toString("utf8")
  } finally {
    await handle.close()
  }
}

const stampOf = (info: FileSystem.File.Info): Stamp => ({
  // `ino` is an Option in the platform's File.Info (Number(Option) was NaN, so no two stamps were ever equal).
  ino: Option.match(info.ino, { onNone: () => 0, onSome: Number }),
  mtimeMs: Option.match(info.mtime, { onNone: () => 0, onSome: (d) => d.getTime() }),
  size: Number(info.size)
})

/**
 * The file's stamp, `None` when it does not exist.
 *
 * @since 0.1.0
 * @category reading
 */
export const stamp = (path: string): Effect.Effect<Option.Option<Stamp>, never, FileSystem.FileSystem> =>
  Effect.flatMap(FileSystem.FileSystem, (fs) =>
    fs.stat(path).pipe(
      Effect.map((info) => Option.some(stampOf(info))),
      Effect.orElseSucceed(() => Option.none())
    ))

/**
 * Creates the directory (and parents) 0700 when missing.
 *
 * @since 0.1.0
 * @category writing
 */
export const ensureDirectory = (dir: string): Effect.Effect<void, TokenFileError, FileSystem.FileSystem> =>
  // created 0700 when missing; refused unless ours and 0700 (PrivateDirectory: another user could swap the file)
  PrivateDirectory.ensure(dir, "token file").pipe(
    Effect.mapError((e) => new TokenFileError({ path: dir, reason: "Permissions", detail: e.detail }))
  )

/**
 * Writes the token set atomically and durably (see the module's invariants).
 *
 * @since 0.1.0
 * @category writing
 */
export const write = (
  path: string,
  tokens: Token.TokenSet,
  options: { readonly reserved?: string | undefined } = {}
): Effect.Effect<void, TokenFileError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const dir = Path.dirname(path)
    yield* ensureDirectory(dir)
    const now = yield* Clock.currentTimeMillis
    const bytes = new TextEncoder().encode(encode(tokens, now))
    const tmp = options.reserved ?? temporaryPath(path)
    yield* Effect.scoped(Effect.gen(function*() {
      // Into a reserved file: over its allocated bytes first, then cut to length, so no new block is needed.
      const file = yield* fs.open(tmp, options.reserved === undefined ? { flag: "wx", mode: 0o600 } : { flag: "r+" })
      yield* file.writeAll(bytes)
      yield* file.truncate(bytes.length)
      yield* file.sync
    })).pipe(
      Effect.zipRight(fs.rename(tmp, path)),
      Effect.mapError(ioError(path, "write it")),
      Effect.onError(() => fs.remove(tmp, { force: true }).pipe(Effect.ignore))
    )
    // The rename is durable only once the directory entry is on disk.
    yield* Effect.scoped(Effect.flatMap(fs.open(dir, { flag: "r" }), (d) => d.sync)).pipe(Effect.ignore)
  }).pipe(Effect.uninterruptible)

const temporaryPath = (path: string) =>
  Path.join(
    Path.dirname(path),
    `.${Path.basename(path)}.${Encoding.encodeHex(globalThis.crypto.getRandomValues(new Uint8Array(6)))}.tmp`
  )

/** What a reservation holds: more than any token file needs. */
const RESERVED_BYTES = 4096

/**
 * Reserves the space for the next write of the file: a temp file of 4 KB (a token file is under 1 KB), written and synced, that `write`
 * fills later. Taken before Strava is asked for a refresh, so that its answer can always be saved: on a full
 * disk the refresh is refused before Strava rotates anything.
 *
 * @since 0.2.0
 * @category writing
 */
export const reserve = (path: string): Effect.Effect<string, TokenFileError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const tmp = temporaryPath(path)
    yield* Effect.scoped(Effect.gen(function*() {
      const file = yield* fs.open(tmp, { flag: "wx", mode: 0o600 })
      yield* file.writeAll(new Uint8Array(RESERVED_BYTES))
      yield* file.sync
    })).pipe(
      Effect.onError(() => fs.remove(tmp, { force: true }).pipe(Effect.ignore)),
      Effect.mapError((e) =>
        new TokenFileError({
          path,
          reason: "NoSpace",
          detail: `cannot reserve the space to save a refresh next to it (${e.message}), so no refresh was ` +
            "asked of Strava and the grant is unchanged. Free some space on that filesystem."
        })
      )
    )
    return tmp
  })

/**
 * Removes temp files a killed writer left next to the file (`.token.json.<random>.tmp`). They never hold
 * anything the file does not: a write renames its temp file only once it is complete and synced.
 *
 * @since 0.1.0
 * @category writing
 */
export const removeTemporaries = (path: string): Effect.Effect<void, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const dir = Path.dirname(path)
    const prefix = `.${Path.basename(path)}.`
    const names = yield* fs.readDirectory(dir).pipe(Effect.orElseSucceed((): ReadonlyArray<string> => []))
    for (const name of names) {
      if (name.startsWith(prefix) && name.endsWith(".tmp")) {
        yield* fs.remove(Path.join(dir, name), { force: true }).pipe(Effect.ignore)
      }
    }
  })

/**
 * Deletes the file (a revoked grant). Missing is fine.
 *
 * @since 0.1.0
 * @category writing
 */
export const remove = (path: string): Effect.Effect<void, TokenFileError, FileSystem.FileSystem> =>
  Effect.flatMap(
    FileSystem.FileSystem,
    (fs) => fs.remove(path, { force: true }).pipe(Effect.mapError(ioError(path, "delete it")))
  )

/**
 * Runs `effect` holding the file's cross-process refresh lock (`<path>.lock`, see `FileLock`), waiting for it
 * with a deadline.
 *
 * @since 0.1.0
 * @category locking
 */
export const withLock = <A, E, R>(
  path: string,
  effect: Effect.Effect<A, E, R>,
  options: FileLock.Options = {}
): Effect.Effect<A, E | TokenFileError, R | FileSystem.FileSystem> =>
  Effect.zipRight(ensureDirectory(Path.dirname(path)), FileLock.withLock(`${path}.lock`, effect, options))

const storeError = (key: string) => (e: TokenFileError) =>
  new GrantStore.GrantStoreError({ key, reason: e.reason, location: e.path, detail: e.detail })

/**
 * Core's `GrantStore` over token files: `pathOf` gives each key's file, `keys` the keys that have one. The
 * lock of a key is its file's lock; `put` with `replaces` compares the refresh token in the file (exact under
 * the lock, which every strava-auth refresh holds).
 *
 * @since 0.2.0
 * @category stores
 */
export const makeStore = (options: {
  /** The key's file, or a `TokenFileError` for a key this store cannot hold. */
  readonly pathOf: (key: string) => Either.Either<string, TokenFileError>
  readonly keys: Effect.Effect<ReadonlyArray<string>, TokenFileError, FileSystem.FileSystem>
}): Effect.Effect<GrantStore.GrantStoreShape, never, FileSystem.FileSystem> =>
  Effect.map(FileSystem.FileSystem, (fs) => {
    const provide = Effect.provideService(FileSystem.FileSystem, fs)
    // The space for the next write of each key, reserved while its lock is held (see `reserve`).
    const reserved = new Map<string, string>()
    // Each operation a span (`TokenFile.get`, ...) with the grant's key, never a token.
    const withPath = <A, E, R>(
      key: string,
      f: (path: string) => Effect.Effect<A, E | TokenFileError, R>,
      operation: "get" | "put" | "remove" | "withLock"
    ) =>
      Effect.flatMap(options.pathOf(key), f).pipe(
        provide,
        Effect.catchIf(
          (e): e is TokenFileError => e instanceof TokenFileError,
          (e) => Effect.fail(storeError(key)(e))
        ),
        Effect.withSpan(`TokenFile.${operation}`, { attributes: { grant: key } })
      )
    return GrantStore.GrantStore.of({
      get: (key) => withPath(key, read, "get"),
      put: (key, tokens, put) =>
        withPath(key, (path) =>
          Effect.gen(function*() {
            if (put?.replaces !== undefined) {
              const stored = yield* read(path)
              if (!GrantStore.mayReplace(stored, put)) return yield* new GrantStore.StaleGrant({ key })
            }
            const space = reserved.get(key)
            reserved.delete(key)
            yield* write(path, tokens, { reserved: space })
          }), "put"),
      remove: (key) => withPath(key, remove, "remove"),
      list: options.keys.pipe(provide, Effect.mapError(storeError("*"))),
      withLock: (key, effect) =>
        withPath(key, (path) =>
          withLock(
            path,
            Effect.acquireUseRelease(
              Effect.tap(reserve(path), (space) => Effect.sync(() => reserved.set(key, space))),
              () => effect,
              (space) =>
                Effect.zipRight(
                  Effect.sync(() => reserved.delete(key)),
                  fs.remove(space, { force: true }).pipe(Effect.ignore)
                )
            )
          ), "withLock")
    })
  })

/**
 * A store of one grant in one file, under `GrantStore.defaultKey` (the daemon's default account, an app that
 * owns its grant through a file).
 *
 * @since 0.2.0
 * @category stores
 */
export const makeFileStore = (path: string): Effect.Effect<GrantStore.GrantStoreShape, never, FileSystem.FileSystem> =>
  makeStore({
    pathOf: () => Either.right(path),
    keys: Effect.map(stamp(path), (s) => Option.isSome(s) ? [GrantStore.defaultKey] : [])
  })

/**
 * Core's `GrantStore` over one token file, for apps that own their grant through a file.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerStore = (path: string): Layer.Layer<GrantStore.GrantStore, never, FileSystem.FileSystem> =>
  Layer.effect(GrantStore.GrantStore, makeFileStore(path))

const keyPattern = /^[A-Za-z0-9_-]{1,64}$/

/**
 * A store of many grants, one file per key in `dir` (`<key>.json`; keys are letters, digits, `-` and `_`).
 *
 * @since 0.2.0
 * @category stores
 */
export const makeDirectoryStore = (
  dir: string
): Effect.Effect<GrantStore.GrantStoreShape, never, FileSystem.FileSystem> =>
  makeStore({
    pathOf: (key) =>
      keyPattern.test(key)
        ? Either.right(Path.join(dir, `${key}.json`))
        : Either.left(
          new TokenFileError({
            path: dir,
            reason: "Malformed",
            detail: `${JSON.stringify(key)} is not an account name: use letters, digits, - and _ (at most 64).`
          })
        ),
    keys: Effect.flatMap(FileSystem.FileSystem, (fs) =>
      fs.readDirectory(dir).pipe(
        Effect.map((names) =>
          names.filter((n) => n.endsWith(".json") && keyPattern.test(n.slice(0, -5))).map((n) => n.slice(0, -5)).sort()
        ),
        Effect.catchIf((e) => e._tag === "SystemError" && e.reason === "NotFound", () => Effect.succeed([])),
        Effect.mapError(ioError(dir, "list the directory"))
      ))
  })

/**
 * @since 0.2.0
 * @category layers
 */
export const layerDirectoryStore = (dir: string): Layer.Layer<GrantStore.GrantStore, never, FileSystem.FileSystem> =>
  Layer.effect(GrantStore.GrantStore, makeDirectoryStore(dir))

/**
 * "expires in 5h 59m" / "expired 3m ago", for `status`.
 *
 * @since 0.1.0
 * @category reading
 */
export const describeExpiry = (tokens: Token.TokenSet, nowMillis: number): string => {
  const left = tokens.remainingMillis(nowMillis)
  return left <= 0 ?
    `expired ${Duration.format(Duration.millis(-left - (-left % 1000)))} ago` :
    `expires in ${Duration.format(Duration.millis(left - (left % 1000)))}`
}

/**
 * Whether `path` already holds something a restore would replace (a token file, valid or not).
 *
 * @since 0.2.0
 * @category restoring
 */
export const occupied = (path: string): boolean => {
  try {
    Fs.lstatSync(path)
    return true
  } catch {
    return false
  }
}

/**
 * Writes a grant brought from elsewhere (`strava-auth restore`), under the file's lock: refused when the file is
 * there already, unless `force`. Like a login, it writes a new grant: no refresh is involved.
 *
 * @since 0.2.0
 * @category restoring
 */
export const restore = (
  path: string,
  tokens: Token.TokenSet,
  force: boolean
): Effect.Effect<boolean, TokenFileError, FileSystem.FileSystem> =>
  withLock(
    path,
    Effect.suspend(() => !force && occupied(path) ? Effect.succeed(false) : Effect.as(write(path, tokens), true))
  )
