import { execFileSync, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

import { afterAll, assert, describe, it } from "@effect/vitest"
import { RefreshEngine } from "@strava-auth/core"
import type { MockStrava } from "@strava-auth/testing"
import { MockServer, Simulator } from "@strava-auth/testing"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"

import * as Helper from "../src/Helper.js"
import * as TokenFile from "../src/TokenFile.js"
import {
  daemon,
  decide,
  eventually,
  firstLine,
  login,
  run,
  sandbox,
  socketGet,
  start,
  transcript,
  visitStart
} from "./harness.js"
import { requireTool } from "./tools.js"

// Short lifetimes so refreshes happen within seconds: tokens live 8 s, a new one is minted in the last 6 s,
// and the daemon refreshes 4 s before expiry.
const fast = { accessTokenLifetimeMillis: 8_000, refreshThresholdMillis: 6_000 }

const withMock = <A, E>(
  f: (
    server: MockServer.MockServerShape,
    mock: MockStrava.MockStravaShape
  ) => Effect.Effect<A, E, Scope.Scope>,
  options: MockServer.Options = {}
) =>
  Effect.scoped(
    Effect.flatMap(MockServer.make(options), ({ mock, server }) =>
      f(server, mock).pipe(Effect.ensuring(Effect.sync(() =>
        issued.push(...mock.simulator.issuedTokens())
      ))))
  )

/** Every token the mocks issued during this file's tests. */
const issued: Array<string> = []

// The secret scan: nothing any strava-auth process wrote to stderr (logs, messages, the login's progress)
// contains a token or the client secret.
afterAll(() => {
  const output = transcript.join("")
  assert.isAbove(issued.length, 0)
  assert.isAbove(output.length, 0)
  for (const secret of [...issued, Simulator.defaultApp.clientSecret]) {
    assert.notInclude(output, secret)
  }
})

const readJson = (file: string) => JSON.parse(Fs.readFileSync(file, "utf8"))

const chattr = requireTool("chattr", "e2fsprogs")
const curl = requireTool("curl", "curl")

describe("strava-auth login", () => {
  it.live("logs in through the loopback callback and writes a 0600 token file in a 0700 directory", () =>
    withMock((server) =>
      Effect.gen(function*() {
        const box = sandbox(server)
        const { page, result, url } = yield* login(box, server)
        assert.strictEqual(result.code, 0, result.stderr)
        assert.match(url, /redirect_uri=http%3A%2F%2F127\.0\.0\.1%3A\d+%2Fauthorization/)
        assert.match(url, /scope=read%2Cactivity%3Aread/)
        assert.strictEqual(page.status, 200)
        assert.include(page.text, "Logged in as Marianne Mock")
        assert.include(result.stderr, "Logged in as Marianne Mock")
        const json = readJson(box.tokenFile)
        assert.strictEqual(json.scope, "read,activity:read")
        assert.strictEqual(json.athlete.id, Simulator.defaultAthlete.id)
        assert.strictEqual(Fs.statSync(box.tokenFile).mode & 0o777, 0o600)
        assert.strictEqual(Fs.statSync(Path.dirname(box.tokenFile)).mode & 0o777, 0o700)
      })
    ))

  it.live("refuses a forged redirect with 400 and keeps waiting for the real one", () =>
    withMock((server) =>
      Effect.gen(function*() {
        const box = sandbox(server)
        const child = start(["login", "--no-browser"], box.env)
        // the browser's visit to the start address: Strava's URL and the login's cookie
        const { authorizeUrl, cookie } = yield* Effect.promise(async () => visitStart(await firstLine(child)))
        const redirect = new URL(authorizeUrl).searchParams.get("redirect_uri")!
        const forged = yield* Effect.promise(() =>
          fetch(`${redirect}?state=forged&code=evil&scope=read`, { headers: { cookie } })
        )
        assert.strictEqual(forged.status, 400)
        assert.include(yield* Effect.promise(() => forged.text()), "does not belong to this login")
        assert.isNull(child.exitCode)
        // now the real approval
        const location = yield* Effect.promise(() => decide(server, authorizeUrl, { grant: ["activity:read"] }))
        const page = yield* Effect.promise(() => fetch(location, { headers: { cookie } }))
        assert.strictEqual(page.status, 200)
        const code = yield* Effect.promise(() =>
          new Promise((r) => child.exitCode !== null ? r(child.exitCode) : child.once("exit", r))
        )
        assert.strictEqual(code, 0)
      })
    ))

  it.live("a denial is a clear message on both sides and exit 77", () =>
    withMock((server) =>
      Effect.gen(function*() {
        const box = sandbox(server)
        const { page, result } = yield* login(box, server, { approve: false })
        assert.strictEqual(result.code, 77)
        assert.include(result.stderr, "denied access")
        assert.include(page.text, "denied access")
        assert.isFalse(Fs.existsSync(box.tokenFile))
      })
    ))

  it.live("a required scope unticked is refused, naming it (exit 77)", () =>
    withMock((server) =>
      Effect.gen(function*() {
        const box = sandbox(server)
        const { page, result } = yield* login(box, server, { grant: [] })
        assert.strictEqual(result.code, 77)
        assert.include(result.stderr, "activity:read")
        assert.include(page.text, "activity:read")
      })
    ))

  it.live("--manual reads the pasted address", () =>
    withMock((server, mock) =>
      Effect.gen(function*() {
        const box = sandbox(server)
        const child = start(["login", "--manual"], box.env)
        const out: Array<string> = []
        child.stdout!.on("data", (d: string) => out.push(d))
        const exited = new Promise<number | null>((r) => child.once("exit", r))
        const url = yield* eventually(async () => out.join("").split("\n")[0] || undefined, 10_000, "the URL")
        assert.include(url, "redirect_uri=http%3A%2F%2Flocalhost%2Fexchange_token")
        const redirect = yield* mock.approve(url)
        child.stdin!.end(`${redirect}\n`)
        assert.strictEqual(yield* Effect.promise(() => exited), 0)
        assert.isTrue(Fs.existsSync(box.tokenFile))
      })
    ))

  it.live("--port fixes the callback port (for ssh -L)", () =>
    withMock((server) =>
      Effect.gen(function*() {
        const port = yield* Effect.promise(() =>
          new Promise<number>((resolve) => {
            const probe = Net.createServer().listen(0, "127.0.0.1", () => {
              const address = probe.address() as Net.AddressInfo
              probe.close(() => resolve(address.port))
            })
          })
        )
        const { result, url } = yield* login(sandbox(server), server, { args: ["--port", String(port)] })
        assert.strictEqual(result.code, 0, result.stderr)
        assert.include(url, `redirect_uri=http%3A%2F%2F127.0.0.1%3A${port}%2Fauthorization`)
      })
    ))

  it.live("an unknown scope is refused before any request (exit 78)", () =>
    withMock((server) =>
      Effect.gen(function*() {
        const result = yield* run(["login", "--no-browser", "--scope", "read,write"], sandbox(server).env)
        assert.strictEqual(result.code, 78)
        assert.include(result.stderr, "Unknown Strava scope \"write\"")
      })
    ))
})

describe("strava-auth daemon", () => {
  it.live("serves the token on a 0600 socket, refreshes before expiry and persists each rotation", () =>
    withMock((server, mock) =>
      Effect.gen(function*() {
        const box = sandbox(server, { STRAVA_AUTH_REFRESH_MARGIN: "4s" })
        assert.strictEqual((yield* login(box, server)).result.code, 0)
        const first = readJson(box.tokenFile).access_token as string
        yield* daemon(box)
        const socketMode = Fs.statSync(box.socket).mode & 0o777
        assert.strictEqual(socketMode, 0o600)
        assert.strictEqual(Fs.statSync(Path.dirname(box.socket)).mode & 0o777, 0o700)
        const served = yield* Effect.promise(() => socketGet(box.socket, "/token"))
        assert.deepStrictEqual(served, { _tag: "Reply", status: 200, body: first })
        const fresh = yield* eventually(
          async () => {
            const reply = await socketGet(box.socket, "/token")
            return reply._tag === "Reply" && reply.status === 200 && reply.body !== first ? reply.body : undefined
          },
          20_000,
          "a refreshed token on the socket"
        )
        const file = readJson(box.tokenFile)
        assert.strictEqual(file.access_token, fresh)
        assert.strictEqual(file.refresh_token, yield* mock.liveRefreshToken())
        const json = yield* Effect.promise(() => socketGet(box.socket, "/token.json"))
        assert.strictEqual(json._tag === "Reply" && JSON.parse(json.body).athlete_id, Simulator.defaultAthlete.id)
        const health = yield* Effect.promise(() => socketGet(box.socket, "/health"))
        assert.strictEqual(health._tag === "Reply" && JSON.parse(health.body).status, "ok")
        const missing = yield* Effect.promise(() => socketGet(box.socket, "/nope"))
        assert.strictEqual(missing._tag === "Reply" && missing.status, 404)
        const wrongMethod = yield* Effect.promise(() => socketGet(box.socket, "/token", "POST"))
        assert.strictEqual(wrongMethod._tag === "Reply" && wrongMethod.status, 405)
      }), fast))

  it.live("keeps serving the old token through transient faults, then recovers", () =>
    withMock((server, mock) =>
      Effect.gen(function*() {
        const box = sandbox(server, { STRAVA_AUTH_REFRESH_MARGIN: "5s" })
        yield* login(box, server)
        const first = readJson(box.tokenFile).access_token as string
        yield* mock.inject({ endpoint: "token", fault: { _tag: "ServerError", status: 503 }, when: { times: 2 } })
        yield* daemon(box)
        const retrying = yield* eventually(
          async () => {
            const reply = await socketGet(box.socket, "/health")
            const body = reply._tag === "Reply" ? JSON.parse(reply.body) : undefined
            return body?.status === "retrying" ? body : undefined
          },
          15_000,
          "status retrying"
        )
        assert.isAtLeast(retrying.consecutive_failures, 1)
        assert.include(retrying.last_error, "503")
        const during = yield* Effect.promise(() => socketGet(box.socket, "/token"))
        assert.deepStrictEqual(during, { _tag: "Reply", status: 200, body: first })
        yield* eventually(
          async () => {
            const reply = await socketGet(box.socket, "/token")
            return reply._tag === "Reply" && reply.status === 200 && reply.body !== first ? true : undefined
          },
          20_000,
          "recovery"
        )
      }), fast))

  it.live("503 needs_login after the athlete revokes, and recovery after a new login without a restart", () =>
    withMock((server, mock) =>
      Effect.gen(function*() {
        const box = sandbox(server)
        yield* login(box, server)
        yield* daemon(box)
        yield* mock.revokeAthlete()
        const refreshed = yield* Effect.promise(() => socketGet(box.socket, "/refresh", "POST"))
        assert.strictEqual(refreshed._tag === "Reply" && refreshed.status, 503)
        const token = yield* Effect.promise(() => socketGet(box.socket, "/token"))
        assert.strictEqual(token._tag === "Reply" && token.status, 503)
        assert.strictEqual(token._tag === "Reply" && JSON.parse(token.body).error, "needs_login")
        const status = yield* run(["status"], box.env)
        assert.strictEqual(status.code, 77)
        assert.include(status.stdout, "strava-auth login")
        assert.strictEqual((yield* login(box, server)).result.code, 0)
        const fresh = readJson(box.tokenFile).access_token as string
        yield* eventually(
          async () => {
            const reply = await socketGet(box.socket, "/token")
            return reply._tag === "Reply" && reply.status === 200 && reply.body === fresh ? true : undefined
          },
          10_000,
          "the new login to be served"
        )
      })
    ))

  it.live("--log-format json: one JSON object per line on stderr", () =>
    withMock((server) =>
      Effect.gen(function*() {
        const box = sandbox(server)
        yield* login(box, server)
        const { result } = yield* Effect.scoped(daemon(box, ["--log-format", "json"]))
        const { stderr } = yield* Effect.promise(() => result)
        const lines = stderr.trim().split("\n").map((line) => JSON.parse(line))
        assert.include(lines.map((l) => l.message), "started")
        assert.isTrue(lines.every((l) => typeof l.logLevel === "string" && typeof l.timestamp === "string"))
      })
    ))

  it.live.skipIf(chattr.skip)(
    `a token file that cannot be written: the rotated tokens are kept and written once it can be${chattr.note}`,
    () =>
      withMock((server, mock) =>
        Effect.gen(function*() {
          const box = sandbox(server)
          yield* login(box, server)
          yield* daemon(box)
          yield* mock.expireAccessTokens("30 minutes") // inside the hour: the refresh rotates
          // Not even root can replace an immutable file. (An unwritable directory is caught earlier: the refresh
          // lock cannot be taken there, so nothing is sent to Strava.)
          execFileSync("chattr", ["+i", box.tokenFile])
          try {
            const refused = yield* Effect.promise(() => socketGet(box.socket, "/refresh", "POST"))
            assert.strictEqual(refused._tag === "Reply" && refused.status, 503)
            const live = yield* mock.liveRefreshToken()
            assert.notStrictEqual(readJson(box.tokenFile).refresh_token, live) // Strava rotated; the file could not follow
            const health = yield* Effect.promise(() => socketGet(box.socket, "/health"))
            const body = health._tag === "Reply" ? JSON.parse(health.body) : {}
            assert.strictEqual(body.status, "retrying")
            assert.include(body.last_error, "cannot write")
          } finally {
            execFileSync("chattr", ["-i", box.tokenFile])
          }
          yield* eventually(
            async () => {
              const live = await Effect.runPromise(mock.liveRefreshToken())
              return readJson(box.tokenFile).refresh_token === live ? true : undefined
            },
            20_000,
            "the kept tokens to be written"
          )
        })
      ),
    { timeout: 40_000 }
  )

  it.live("SIGTERM removes the socket and exits 0; a stale socket is replaced; a second daemon is refused", () =>
    withMock((server) =>
      Effect.gen(function*() {
        const box = sandbox(server)
        yield* login(box, server)
        const first = yield* Effect.scoped(Effect.gen(function*() {
          const running = yield* daemon(box)
          const second = yield* run(["daemon"], box.env)
          assert.strictEqual(second.code, 75)
          assert.include(second.stderr, "another strava-auth daemon is answering")
          return running
        }))
        const ended = yield* Effect.promise(() => first.result)
        assert.strictEqual(ended.code, 0)
        assert.isFalse(Fs.existsSync(box.socket))
        // a stale socket file (a crash leaves one) does not stop the next start
        Fs.writeFileSync(box.socket, "")
        yield* Effect.scoped(daemon(box))
      })
    ))
})

describe("signals and the main job", () => {
  it.live("SIGHUP re-reads the configuration: a changed secret file takes effect without a restart", () =>
    withMock((server) =>
      Effect.gen(function*() {
        const box = sandbox(server)
        const { STRAVA_CLIENT_SECRET: secret, ...env } = box.env
        const secretFile = Path.join(box.dir, "secret")
        Fs.writeFileSync(secretFile, secret!, { mode: 0o600 })
        const withFile = { ...box, env: { ...env, STRAVA_CLIENT_SECRET_FILE: secretFile } }
        yield* login(withFile, server)
        const { child, result } = yield* daemon(withFile)
        Fs.writeFileSync(secretFile, "a-rotated-secret-strava-does-not-know", { mode: 0o600 })
        child.kill("SIGHUP")
        yield* eventually(
          async () => {
            await socketGet(box.socket, "/refresh", "POST")
            const health = await socketGet(box.socket, "/health")
            const body = health._tag === "Reply" ? JSON.parse(health.body) : {}
            // A refused secret is about the app, not the grant: retried after a backoff, never "needs_login".
            return body.status === "retrying" && String(body.last_error).includes("STRAVA_CLIENT_SECRET")
              ? true
              : undefined
          },
          10_000,
          "the new secret to be used"
        )
        child.kill("SIGTERM")
        const ended = yield* Effect.promise(() => result)
        assert.include(ended.stderr, "configuration reloaded")
      })
    ))

  it.live.skipIf(curl.skip)(
    `curl --unix-socket reads the token${curl.note}`,
    () =>
      withMock((server) =>
        Effect.gen(function*() {
          const box = sandbox(server)
          yield* login(box, server)
          yield* daemon(box)
          const token = execFileSync("curl", ["-sf", "--unix-socket", box.socket, "http://localhost/token"], {
            encoding: "utf8"
          })
          assert.strictEqual(token, readJson(box.tokenFile).access_token)
        })
      )
  )

  it.live(
    "pnpm start's demo logs in, starts the daemon and shows a refresh on the socket",
    () =>
      Effect.gen(function*() {
        const demo = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "../../../scripts/demo.mjs")
        const result = yield* Effect.promise(() =>
          new Promise<{ code: number | null; out: string }>((resolve) => {
            const child = spawn(process.execPath, [demo, "--seconds", "14", "--lifetime", "9"], { stdio: "pipe" })
            let out = ""
            child.stdout.on("data", (d) => (out += d))
            child.stderr.on("data", (d) => (out += d))
            child.once("exit", (code) => resolve({ code, out }))
          })
        )
        assert.strictEqual(result.code, 0, result.out)
        assert.include(result.out, "Logged in as Marianne Mock")
        assert.include(result.out, "REFRESHED: a new token")
      }),
    { timeout: 40_000 }
  )
})

describe("strava-auth token, status, refresh, revoke", () => {
  it.live("token asks the daemon when it runs, and otherwise refreshes the file itself under the lock", () =>
    withMock((server, mock) =>
      Effect.gen(function*() {
        // A margin as long as the lifetime: the file is always due, and the mock always mints.
        const box = sandbox(server, { STRAVA_AUTH_REFRESH_MARGIN: "8s" })
        yield* login(box, server)
        const before = readJson(box.tokenFile)
        const token = yield* run(["token"], box.env)
        assert.strictEqual(token.code, 0, token.stderr)
        assert.notStrictEqual(token.stdout.trim(), before.access_token)
        const after = readJson(box.tokenFile)
        assert.strictEqual(token.stdout.trim(), after.access_token)
        assert.strictEqual(after.refresh_token, yield* mock.liveRefreshToken())
        const json = yield* run(["token", "--json"], box.env)
        assert.deepStrictEqual(Object.keys(JSON.parse(json.stdout)).sort(), [
          "access_token",
          "athlete_id",
          "expires_at",
          "scope",
          "token_type",
          "version"
        ])
        // with the daemon up, the token comes from its socket
        yield* daemon({ ...box, env: { ...box.env, STRAVA_AUTH_REFRESH_MARGIN: "2s" } })
        const servedBefore = yield* Effect.promise(() => socketGet(box.socket, "/token"))
        const viaDaemon = yield* run(["token"], box.env)
        const servedAfter = yield* Effect.promise(() => socketGet(box.socket, "/token"))
        assert.strictEqual(viaDaemon.code, 0)
        const served = [servedBefore, servedAfter].map((r) => (r._tag === "Reply" ? r.body : ""))
        assert.include(served, viaDaemon.stdout.trim())
      }), { accessTokenLifetimeMillis: 8_000, refreshThresholdMillis: 8_000 }))

  it.live("refresh goes through the daemon; revoke revokes at Strava, deletes the file and the daemon needs login", () =>
    withMock((server, mock) =>
      Effect.gen(function*() {
        const box = sandbox(server)
        yield* login(box, server)
        yield* daemon(box)
        yield* mock.expireAccessTokens("30 minutes") // inside the hour: a refresh mints
        const refreshed = yield* run(["refresh"], box.env)
        assert.strictEqual(refreshed.code, 0, refreshed.stderr)
        assert.include(refreshed.stderr, "Refreshed")
        const revoked = yield* run(["revoke"], box.env)
        assert.strictEqual(revoked.code, 0, revoked.stderr)
        assert.isFalse(Fs.existsSync(box.tokenFile))
        assert.isUndefined(yield* mock.liveRefreshToken())
        yield* eventually(
          async () => {
            const reply = await socketGet(box.socket, "/health")
            return reply._tag === "Reply" && JSON.parse(reply.body).status === "needs_login" ? true : undefined
          },
          10_000,
          "needs_login"
        )
        const token = yield* run(["token"], box.env)
        assert.strictEqual(token.code, 77)
      })
    ))

  it.live("status reports athlete, scopes, expiry and the daemon (text and JSON)", () =>
    withMock((server) =>
      Effect.gen(function*() {
        const box = sandbox(server)
        yield* login(box, server)
        const down = yield* run(["status"], box.env)
        assert.strictEqual(down.code, 0)
        assert.match(down.stdout, /athlete:\s+Marianne Mock \(1001\)/)
        assert.match(down.stdout, /daemon:\s+down/)
        yield* daemon(box)
        const up = JSON.parse((yield* run(["status", "--json"], box.env)).stdout)
        assert.strictEqual(up.daemon, "up")
        assert.strictEqual(up.daemon_status, "ok")
        assert.strictEqual(up.scope, "read,activity:read")
        assert.isAbove(up.expires_in_seconds, 0)
      })
    ))
})

describe("bad input", () => {
  it.live("no token file: token exits 77 and says to log in", () =>
    withMock((server) =>
      Effect.gen(function*() {
        const result = yield* run(["token"], sandbox(server).env)
        assert.strictEqual(result.code, 77)
        assert.include(result.stderr, "strava-auth login")
      })
    ))

  it.live("a token file readable by others: exit 78 with the chmod that fixes it", () =>
    withMock((server) =>
      Effect.gen(function*() {
        const box = sandbox(server)
        yield* login(box, server)
        Fs.chmodSync(box.tokenFile, 0o644)
        const result = yield* run(["token"], box.env)
        assert.strictEqual(result.code, 78)
        assert.include(result.stderr, `chmod 600 ${box.tokenFile}`)
      })
    ))

  it.live("a malformed token file: exit 78, a clear message, and the file is not touched", () =>
    withMock((server) =>
      Effect.gen(function*() {
        const box = sandbox(server)
        Fs.mkdirSync(Path.dirname(box.tokenFile), { recursive: true, mode: 0o700 })
        Fs.writeFileSync(box.tokenFile, "{\"version\":1,", { mode: 0o600 })
        const result = yield* run(["token"], box.env)
        assert.strictEqual(result.code, 78)
        assert.include(result.stderr, "not a strava-auth token file")
        assert.strictEqual(Fs.readFileSync(box.tokenFile, "utf8"), "{\"version\":1,")
      })
    ))

  it.live("missing or invalid configuration: exit 78 naming the variable", () =>
    withMock((server) =>
      Effect.gen(function*() {
        const { STRAVA_CLIENT_ID: _, ...noId } = sandbox(server).env
        const missing = yield* run(["login", "--no-browser"], noId)
        assert.strictEqual(missing.code, 78)
        assert.include(missing.stderr, "STRAVA_CLIENT_ID")
        const { STRAVA_CLIENT_SECRET: __, ...noSecret } = sandbox(server).env
        const secret = yield* run(["login", "--no-browser"], noSecret)
        assert.strictEqual(secret.code, 78)
        assert.include(secret.stderr, "STRAVA_CLIENT_SECRET")
        const margin = yield* run(["daemon"], { ...sandbox(server).env, STRAVA_AUTH_REFRESH_MARGIN: "soon" })
        assert.strictEqual(margin.code, 78)
        assert.include(margin.stderr, "STRAVA_AUTH_REFRESH_MARGIN")
      })
    ))

  it.live("the secret can come from STRAVA_CLIENT_SECRET_FILE or systemd's credentials directory", () =>
    withMock((server) =>
      Effect.gen(function*() {
        const box = sandbox(server)
        const { STRAVA_CLIENT_SECRET: secret, ...env } = box.env
        const credentials = Path.join(box.dir, "creds")
        Fs.mkdirSync(credentials)
        Fs.writeFileSync(Path.join(credentials, "strava-client-secret"), `${secret}\n`, { mode: 0o600 })
        const viaCredentials = { ...box, env: { ...env, CREDENTIALS_DIRECTORY: credentials } }
        assert.strictEqual((yield* login(viaCredentials, server)).result.code, 0)
        const file = Path.join(box.dir, "secret.txt")
        Fs.writeFileSync(file, secret!, { mode: 0o600 })
        const viaFile = { ...box, env: { ...env, STRAVA_CLIENT_SECRET_FILE: file } }
        assert.strictEqual((yield* login(viaFile, server)).result.code, 0)
      })
    ))

  it.live("refresh --local --report prints one JSON line with the outcome (what the daemon's helper does)", () =>
    withMock((server) =>
      Effect.gen(function*() {
        const box = sandbox(server)
        // The line is read with the report's own Schema, as the daemon reads it.
        const report = Schema.decodeUnknownSync(Schema.parseJson(Helper.Report))
        const missing = yield* run(["refresh", "--local", "--report"], box.env)
        assert.strictEqual(missing.code, 77)
        const failed = report(missing.stdout.trim())
        assert.isFalse(failed.ok)
        assert.strictEqual(!failed.ok && failed.error._tag, "LoginRequired")
        assert.strictEqual(failed.version, 1)
        yield* login(box, server)
        const done = yield* run(["refresh", "--local", "--report"], box.env)
        assert.strictEqual(done.code, 0, done.stderr)
        assert.deepStrictEqual(report(done.stdout.trim()), { version: 1, ok: true, outcome: "refreshed" })
        // --if-due: not within the margin, so Strava is not asked and the outcome is the current set
        const notDue = yield* run(["refresh", "--local", "--report", "--if-due"], box.env)
        assert.deepStrictEqual(report(notDue.stdout.trim()), { version: 1, ok: true, outcome: "current" })
      })
    ))

  it.live("refresh --local --report honours the daemon's seen digest: the file holds a newer set, so the outcome is current and Strava is not asked", () =>
    withMock((server, mock) =>
      Effect.gen(function*() {
        const box = sandbox(server)
        const report = Schema.decodeUnknownSync(Schema.parseJson(Helper.Report))
        const digestOf = (text: string) =>
          TokenFile.decode(box.tokenFile, text).pipe(Effect.flatMap(RefreshEngine.fingerprint), Effect.orDie)
        yield* login(box, server)
        const older = yield* digestOf(Fs.readFileSync(box.tokenFile, "utf8"))
        // Another process refreshes: the file now holds a newer set than the one the daemon saw.
        assert.strictEqual((yield* run(["refresh", "--local"], box.env)).code, 0)
        const newer = Fs.readFileSync(box.tokenFile, "utf8")
        assert.notStrictEqual(yield* digestOf(newer), older)
        const asked = (yield* mock.log).filter((e) => e.grantType === "refresh_token").length
        const helper = yield* run(["refresh", "--local", "--report"], { ...box.env, [Helper.seenVariable]: older })
        assert.strictEqual(helper.code, 0, helper.stderr)
        assert.deepStrictEqual(report(helper.stdout.trim()), { version: 1, ok: true, outcome: "current" })
        assert.strictEqual((yield* mock.log).filter((e) => e.grantType === "refresh_token").length, asked)
        assert.strictEqual(Fs.readFileSync(box.tokenFile, "utf8"), newer)
        // With the digest of the set the file holds, the helper does refresh.
        const current = yield* digestOf(newer)
        const again = yield* run(["refresh", "--local", "--report"], { ...box.env, [Helper.seenVariable]: current })
        assert.deepStrictEqual(report(again.stdout.trim()), { version: 1, ok: true, outcome: "refreshed" })
        assert.strictEqual((yield* mock.log).filter((e) => e.grantType === "refresh_token").length, asked + 1)
      }), { refreshThresholdMillis: 7 * 3_600_000 }) // every refresh mints a new set
  )

  it.live("bad usage exits 64; --help works", () =>
    Effect.gen(function*() {
      const help = yield* run(["--help"], { PATH: process.env["PATH"] ?? "" })
      assert.strictEqual(help.code, 0)
      assert.include(help.stdout, "strava-auth")
      const bad = yield* run(["token", "--frobnicate"], { PATH: process.env["PATH"] ?? "" })
      assert.strictEqual(bad.code, 64)
    }))
})
