// Another user on the same machine against the socket's and the token file's directories, and a runtime or
// state directory deleted under a running daemon. Black-box: the real `strava-auth` command (run `pnpm build`
// first) against the mock Strava. Another user is uid 65534 (`nobody`): the tests run as root and chown.
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Path from "node:path"

import { afterAll, assert, describe, it } from "@effect/vitest"
import type { MockStrava } from "@strava-auth/testing"
import { MockServer, Simulator } from "@strava-auth/testing"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

import { collect, daemon, eventually, login, run, sandbox, socketGet, start, tempDir, transcript } from "./harness.js"

const nobody = 65534
const uid = process.getuid!()

const withMock = <A, E>(
  f: (server: MockServer.MockServerShape, mock: MockStrava.MockStravaShape) => Effect.Effect<A, E, Scope.Scope>
) =>
  Effect.scoped(
    Effect.flatMap(MockServer.make(), ({ mock, server }) =>
      f(server, mock).pipe(Effect.ensuring(Effect.sync(() =>
        issued.push(...mock.simulator.issuedTokens())
      ))))
  )

/** Every token the mocks issued during this file's tests. */
const issued: Array<string> = []

afterAll(() => {
  const output = transcript.join("")
  for (const secret of [...issued, Simulator.defaultApp.clientSecret]) assert.notInclude(output, secret)
})

/**
 * The environment of a user without `$XDG_RUNTIME_DIR`: the socket goes to `$TMPDIR/strava-auth-<uid>/`, here a
 * test directory standing in for the shared /tmp.
 */
const withoutRuntimeDir = (env: Record<string, string>) => {
  const tmp = tempDir("shared-tmp-")
  Fs.chmodSync(tmp, 0o1777)
  const { STRAVA_AUTH_SOCKET: _, ...rest } = env
  return { env: { ...rest, TMPDIR: tmp }, dir: Path.join(tmp, `strava-auth-${uid}`) }
}

/** The other user's server on `socketPath`, answering like a daemon with their own token; the socket is theirs. */
const impostor = (socketPath: string, owner = nobody) =>
  Effect.acquireRelease(
    Effect.async<Http.Server>((resume) => {
      const server = Http.createServer((req, res) => {
        res.writeHead(200, { "content-type": "application/json" })
        res.end(
          req.url === "/health"
            ? JSON.stringify({ status: "ok" })
            : JSON.stringify({ access_token: "attackers-token", token_type: "Bearer", expires_at: 2_000_000_000 })
        )
      })
      server.listen(socketPath, () => {
        Fs.chownSync(socketPath, owner, owner)
        resume(Effect.succeed(server))
      })
    }),
    (server) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
  )

/** Runs the daemon until it exits on its own (or fails after `millis`: it did not refuse). */
const daemonExit = (env: Record<string, string>, millis = 10_000) =>
  Effect.gen(function*() {
    const child = start(["daemon"], env)
    const result = collect(child)
    yield* eventually(async () => (child.exitCode !== null ? true : undefined), millis, "the daemon to refuse and exit")
    return yield* Effect.promise(() => result)
  })

describe("the socket's directory", () => {
  it.live("another user's directory (0777 or 0755), a file or a link there: the daemon exits 78 saying what to do", () =>
    withMock((server) =>
      Effect.gen(function*() {
        const cases: Array<[string, (dir: string) => void, RegExp]> = [
          ["0777", (dir) => {
            Fs.mkdirSync(dir, { mode: 0o777 })
            Fs.chmodSync(dir, 0o777)
            Fs.chownSync(dir, nobody, nobody)
          }, /belongs to uid 65534, not to this user .*Remove it/],
          ["0755", (dir) => {
            Fs.mkdirSync(dir, { mode: 0o755 })
            Fs.chownSync(dir, nobody, nobody)
          }, /belongs to uid 65534/],
          ["file", (dir) => Fs.writeFileSync(dir, ""), /is a file, not a directory.*rm /],
          ["link", (dir) => {
            const target = tempDir("elsewhere-")
            Fs.symlinkSync(target, dir)
            Fs.lchownSync(dir, nobody, nobody)
          }, /is a symbolic link, not a directory/]
        ]
        for (const [name, plant, message] of cases) {
          const box = sandbox(server)
          const { dir, env } = withoutRuntimeDir(box.env)
          plant(dir)
          const result = yield* daemonExit(env)
          assert.strictEqual(result.code, 78, `${name}: ${result.stderr}`)
          assert.match(result.stderr, message, name)
          assert.include(result.stderr, dir, name)
        }
      })
    ))

  it.live("our own directory open to others (0777) is refused too: exit 78 and chmod 700", () =>
    withMock((server) =>
      Effect.gen(function*() {
        const box = sandbox(server)
        const { dir, env } = withoutRuntimeDir(box.env)
        Fs.mkdirSync(dir)
        Fs.chmodSync(dir, 0o777)
        const result = yield* daemonExit(env)
        assert.strictEqual(result.code, 78, result.stderr)
        assert.include(result.stderr, `chmod 700 ${dir}`)
      })
    ))
})

describe("clients of the socket", () => {
  it.live("the /tmp hijack: token and status refuse a socket in another user's directory (exit 78), never its token", () =>
    withMock((server) =>
      Effect.gen(function*() {
        const box = sandbox(server)
        const { dir, env } = withoutRuntimeDir(box.env)
        yield* login(box, server)
        Fs.mkdirSync(dir, { mode: 0o777 })
        Fs.chmodSync(dir, 0o777)
        Fs.chownSync(dir, nobody, nobody)
        yield* impostor(Path.join(dir, "token.sock"))
        // the fast path, the full CLI (a flag the fast path does not take) and status
        const full = ["token", "--json", "--token-file", box.tokenFile, "--socket", Path.join(dir, "token.sock")]
        for (const args of [["token"], full, ["status"]]) {
          const result = yield* run(args, env)
          assert.strictEqual(result.code, 78, `${args.join(" ")}: ${result.stderr}`)
          assert.notInclude(result.stdout, "attackers-token", args.join(" "))
          assert.match(result.stderr, /refusing the daemon's socket .* belongs to uid 65534/, args.join(" "))
        }
      })
    ))

  it.live("a socket owned by another user in our own 0700 directory is refused; trusted as STRAVA_AUTH_DAEMON_USER", () =>
    withMock((server) =>
      Effect.gen(function*() {
        const box = sandbox(server)
        Fs.mkdirSync(Path.dirname(box.socket), { mode: 0o700 })
        yield* impostor(box.socket)
        const refused = yield* run(["token"], box.env)
        assert.strictEqual(refused.code, 78, refused.stderr)
        assert.notInclude(refused.stdout, "attackers-token")
        assert.match(
          refused.stderr,
          /refusing the daemon's socket .*: it belongs to uid 65534.*STRAVA_AUTH_DAEMON_USER/
        )
        const status = yield* run(["status"], box.env)
        assert.strictEqual(status.code, 78, status.stderr)
        // the daemon's user, named: its socket is trusted
        const trusted = yield* run(["token"], { ...box.env, STRAVA_AUTH_DAEMON_USER: "nobody" })
        assert.strictEqual(trusted.code, 0, trusted.stderr)
        assert.strictEqual(trusted.stdout, "attackers-token\n")
      })
    ))
})

describe("the token file's directory", () => {
  it.live("writable by others (1777) or owned by another user: the daemon and login exit 78 saying how to fix it", () =>
    withMock((server) =>
      Effect.gen(function*() {
        const cases: Array<[string, (dir: string) => void, RegExp]> = [
          ["1777", (dir) => {
            Fs.mkdirSync(dir)
            Fs.chmodSync(dir, 0o1777)
          }, /has mode 1777: group or others can write to it.*chmod 700/],
          ["another user's", (dir) => {
            Fs.mkdirSync(dir, { mode: 0o700 })
            Fs.chownSync(dir, nobody, nobody)
          }, /belongs to uid 65534, not to this user/]
        ]
        for (const [name, plant, message] of cases) {
          const box = sandbox(server)
          const dir = Path.dirname(box.tokenFile)
          plant(dir)
          const result = yield* daemonExit(box.env)
          assert.strictEqual(result.code, 78, `${name}: ${result.stderr}`)
          assert.match(result.stderr, message, name)
          assert.include(result.stderr, dir, name)
          const loggedIn = yield* login(box, server)
          assert.strictEqual(loggedIn.result.code, 78, `${name}: ${loggedIn.result.stderr}`)
          assert.isFalse(Fs.existsSync(box.tokenFile), name)
        }
      })
    ))
})

describe("directories deleted under a running daemon", () => {
  it.live("a deleted socket (and its directory, here the temp-dir fallback) is created again", () =>
    withMock((server) =>
      Effect.gen(function*() {
        const base = sandbox(server)
        const { dir, env } = withoutRuntimeDir(base.env)
        const box = { ...base, env, socket: Path.join(dir, "token.sock") }
        yield* login(box, server)
        yield* daemon(box) // creates the directory itself
        const answered = async () => {
          const reply = await socketGet(box.socket, "/token")
          return reply._tag === "Reply" && reply.status === 200 ? true : undefined
        }
        Fs.rmSync(box.socket)
        yield* eventually(answered, 5000, "the socket to be created again")
        Fs.rmSync(Path.dirname(box.socket), { recursive: true }) // a cleaned $XDG_RUNTIME_DIR
        yield* eventually(answered, 5000, "the socket and its directory to be created again")
        assert.strictEqual(Fs.lstatSync(Path.dirname(box.socket)).mode & 0o7777, 0o700)
        assert.strictEqual(Fs.lstatSync(box.socket).mode & 0o777, 0o600)
      })
    ))

  it.live("after rm -rf of the state directory, a new login is served within seconds (not at the 30 s re-check)", () =>
    withMock((server) =>
      Effect.gen(function*() {
        const box = sandbox(server)
        yield* login(box, server)
        yield* daemon(box)
        const health = async () => {
          const reply = await socketGet(box.socket, "/health")
          return reply._tag === "Reply" ? JSON.parse(reply.body).status as string : undefined
        }
        Fs.rmSync(Path.dirname(box.tokenFile), { recursive: true })
        yield* eventually(async () => (await health()) === "needs_login" ? true : undefined, 5000, "needs_login")
        const again = yield* login(box, server)
        assert.strictEqual(again.result.code, 0, again.result.stderr)
        const expected = JSON.parse(Fs.readFileSync(box.tokenFile, "utf8")).access_token as string
        const served = yield* eventually(
          async () => {
            const reply = await socketGet(box.socket, "/token")
            return reply._tag === "Reply" && reply.status === 200 ? reply.body : undefined
          },
          5000,
          "the new login's token on the socket"
        )
        assert.strictEqual(served, expected)
      })
    ))
})
