// Every flag every command accepts changes what it does: one observation per (command, flag), through the
// real command against the mock Strava server, each beside a run without the flag. The first test checks that
// the table below has a case for every flag in the grammar (Usage.commands), so a flag added without a case
// here fails the suite.
import * as Fs from "node:fs"
import * as Path from "node:path"

import { assert, describe, it } from "@effect/vitest"
import { MockServer, Simulator } from "@strava-auth/testing"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

import * as Usage from "../src/Usage.js"
import {
  bin,
  callbackServer,
  collect,
  daemon,
  fakeOpener,
  firstLine,
  freePort,
  login,
  run,
  type Sandbox,
  sandbox,
  socketGet,
  start,
  tempDir,
  visitStart
} from "./harness.js"

/** The (command, flag) pairs each test below observes, by test. */
const observed = {
  status: ["--json", "--account", "--token-file", "--socket"], // --account (every command): in Accounts.test.ts
  token: ["--json", "--account", "--token-file", "--socket", "--client-id", "--refresh-margin", "--strava-url"],
  refresh: [
    "--json",
    "--account",
    "--local",
    "--if-due",
    "--report",
    "--token-file",
    "--socket",
    "--client-id",
    "--refresh-margin",
    "--strava-url"
  ],
  revoke: ["--account", "--token-file", "--client-id", "--strava-url"],
  login: [
    "--account",
    "--client-secret-file", // in Accounts.test.ts
    "--scope",
    "--port",
    "--no-browser",
    "--force-prompt",
    "--manual",
    "--timeout",
    "--token-file",
    "--client-id",
    "--strava-url"
  ],
  daemon: [
    "--log-format",
    "--metrics-listen",
    "--on-token",
    "--on-login-needed",
    "--on-error",
    "--login-notify-interval",
    "--socket-group", // in SocketGroup.test.ts
    "--token-file",
    "--socket",
    "--client-id",
    "--refresh-margin",
    "--strava-url"
  ],
  exec: ["--on-change", "--account", "--token-file", "--socket"], // --on-change: restart, signal and none in Exec.test.ts
  dump: ["--copy", "--force", "--account", "--token-file"], // each in Dump.test.ts
  restore: ["--force", "--account", "--token-file"], // each in Dump.test.ts
  "systemd-unit": ["--user", "--system"],
  "webhook create": ["--callback-url", "--verify-token-file", "--client-id", "--api-url"],
  "webhook view": ["--json", "--client-id", "--api-url"],
  "webhook delete": ["--id", "--client-id", "--api-url"]
} as const

/** Refreshes Strava was asked for (whatever it answered: with hours left it returns the same token). */
const refreshes = (log: ReadonlyArray<{ readonly endpoint: string; readonly grantType?: string | undefined }>) =>
  log.filter((entry) => entry.endpoint === "token" && entry.grantType === "refresh_token").length

/** Logged in against `server`, in a fresh sandbox. */
const loggedIn = (server: MockServer.MockServerShape, extra: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const box = sandbox(server, extra)
    const { result } = yield* login(box, server)
    assert.strictEqual(result.code, 0, result.stderr)
    return box
  })

const missing = (box: Sandbox) => Path.join(box.dir, "elsewhere", "token.json")
const tokenIn = (file: string) => JSON.parse(Fs.readFileSync(file, "utf8")).access_token as string

describe("every flag changes what its command does", () => {
  it("the cases below cover every flag of every command in the grammar", () => {
    const grammar = Object.fromEntries(
      Object.values(Usage.commands).filter((spec) => spec.name !== "webhook").map((spec) => [
        spec.name,
        spec.flags.map((flag: Usage.Flag) => `--${flag.name}`).sort()
      ])
    )
    const cases = Object.fromEntries(Object.entries(observed).map(([name, flags]) => [name, [...flags].sort()]))
    assert.deepStrictEqual(cases, grammar)
  })

  it.scopedLive("status: --json, --token-file, --socket", () =>
    Effect.gen(function*() {
      const { server } = yield* MockServer.make()
      const box = yield* loggedIn(server)
      const plain = yield* run(["status"], box.env)
      assert.strictEqual(plain.code, 0, plain.stderr)
      assert.throws(() => JSON.parse(plain.stdout))
      const json = yield* run(["status", "--json"], box.env)
      assert.strictEqual(JSON.parse(json.stdout).token_file, box.tokenFile)

      const other = yield* run(["status", "--token-file", missing(box)], box.env)
      assert.strictEqual(other.code, 77)
      assert.include(other.stdout, `token file:   ${missing(box)}`)

      yield* daemon(box)
      assert.include((yield* run(["status"], box.env)).stdout, "daemon:       up")
      const elsewhere = yield* run(["status", "--socket", Path.join(box.dir, "none.sock")], box.env)
      assert.include(elsewhere.stdout, "daemon:       down")
    }), 60_000)

  it.scopedLive(
    "token: --json, --token-file, --socket, and --client-id/--refresh-margin/--strava-url",
    () =>
      Effect.gen(function*() {
        const { mock, server } = yield* MockServer.make()
        const other = yield* MockServer.make()
        const box = yield* loggedIn(server)
        const bare = yield* run(["token"], box.env)
        assert.strictEqual(bare.stdout.trim(), tokenIn(box.tokenFile))
        const json = yield* run(["token", "--json"], box.env)
        assert.strictEqual(JSON.parse(json.stdout).access_token, tokenIn(box.tokenFile))

        assert.strictEqual((yield* run(["token", "--token-file", missing(box)], box.env)).code, 77)

        // A daemon on its own socket answers even when this process has no token file.
        const socket = Path.join(box.dir, "run2", "other.sock")
        yield* daemon({ ...box, socket }, ["--socket", socket])
        assert.strictEqual((yield* run(["token", "--token-file", missing(box)], box.env)).code, 77)
        const viaSocket = yield* run(["token", "--token-file", missing(box), "--socket", socket], box.env)
        assert.strictEqual(viaSocket.code, 0, viaSocket.stderr)

        // --token-file alone names another grant's file: its token, not the default socket's daemon's.
        yield* daemon(box)
        const another = yield* loggedIn(other.server) // another grant (from another Strava: this one keeps ours)
        const named = yield* run(["token", "--token-file", another.tokenFile], box.env)
        assert.strictEqual(named.stdout.trim(), tokenIn(another.tokenFile))
        assert.notStrictEqual(tokenIn(another.tokenFile), tokenIn(box.tokenFile))
        const status = yield* run(["status", "--token-file", another.tokenFile], box.env)
        assert.include(status.stdout, "not asked (--token-file without --socket)")

        // --refresh-margin beyond what is left: this process refreshes the file itself.
        const before = tokenIn(box.tokenFile)
        const refreshedBefore = refreshes(yield* mock.log)
        assert.strictEqual((yield* run(["token"], box.env)).stdout.trim(), before)
        const due = yield* run(["token", "--refresh-margin", "6h"], box.env)
        assert.strictEqual(due.code, 0, due.stderr)
        assert.strictEqual(refreshes(yield* mock.log), refreshedBefore + 1)

        const dueEnv = { ...box.env, STRAVA_AUTH_REFRESH_MARGIN: "6h" }
        const wrongApp = yield* run(["token", "--client-id", "999"], dueEnv)
        assert.strictEqual(wrongApp.code, 78, wrongApp.stderr)
        assert.strictEqual((yield* run(["token"], dueEnv)).code, 0)

        const elsewhere = yield* run(["token", "--strava-url", other.server.url], dueEnv)
        assert.strictEqual(elsewhere.code, 77, elsewhere.stderr) // the other Strava does not know this grant
        assert.isTrue((yield* other.mock.log).some((entry) => entry.endpoint === "token"))
      }),
    60_000
  )

  it.scopedLive(
    "refresh: --local, --if-due, --report, --json, --token-file, --socket, --client-id, --strava-url, --refresh-margin",
    () =>
      Effect.gen(function*() {
        const { mock, server } = yield* MockServer.make()
        const other = yield* MockServer.make()
        const box = yield* loggedIn(server)
        yield* daemon(box)
        const viaDaemon = yield* run(["refresh"], box.env)
        assert.strictEqual(viaDaemon.code, 0, viaDaemon.stderr)
        assert.notInclude(viaDaemon.stderr, "in this process")
        const local = yield* run(["refresh", "--local"], box.env)
        assert.strictEqual(local.code, 0, local.stderr)
        assert.include(local.stderr, "in this process")
        const noDaemonHere = yield* run(["refresh", "--socket", Path.join(box.dir, "none.sock")], box.env)
        assert.include(noDaemonHere.stderr, "in this process")

        assert.strictEqual(viaDaemon.stdout, "")
        const json = yield* run(["refresh", "--local", "--json"], box.env)
        assert.strictEqual(JSON.parse(json.stdout).access_token, tokenIn(box.tokenFile))
        const report = yield* run(["refresh", "--local", "--report"], box.env)
        assert.strictEqual(JSON.parse(report.stdout).ok, true)

        const count = refreshes(yield* mock.log)
        const notDue = yield* run(["refresh", "--local", "--if-due"], box.env)
        assert.strictEqual(notDue.code, 0, notDue.stderr)
        assert.strictEqual(refreshes(yield* mock.log), count)
        const due = yield* run(["refresh", "--local", "--if-due", "--refresh-margin", "6h"], box.env)
        assert.strictEqual(due.code, 0, due.stderr)
        assert.strictEqual(refreshes(yield* mock.log), count + 1)

        assert.strictEqual((yield* run(["refresh", "--local", "--token-file", missing(box)], box.env)).code, 77)
        assert.strictEqual((yield* run(["refresh", "--local", "--client-id", "999"], box.env)).code, 78)
        const elsewhere = yield* run(["refresh", "--local", "--strava-url", other.server.url], box.env)
        assert.strictEqual(elsewhere.code, 77, elsewhere.stderr)
        assert.isTrue((yield* other.mock.log).some((entry) => entry.endpoint === "token"))
      }),
    90_000
  )

  it.scopedLive("revoke: --token-file, --client-id, --strava-url", () =>
    Effect.gen(function*() {
      const { mock, server } = yield* MockServer.make()
      const other = yield* MockServer.make()
      const box = yield* loggedIn(server)
      const none = yield* run(["revoke", "--token-file", missing(box)], box.env)
      assert.strictEqual(none.code, 0, none.stderr)
      assert.include(none.stderr, "nothing to revoke")
      assert.isTrue(Fs.existsSync(box.tokenFile))
      const wrongApp = yield* run(["revoke", "--client-id", "999"], box.env)
      assert.strictEqual(wrongApp.code, 78, wrongApp.stderr)
      assert.isTrue(Fs.existsSync(box.tokenFile))
      // The revoke goes to the other Strava, which does not know the grant; ours is not asked.
      const revokes = (log: ReadonlyArray<{ readonly endpoint: string }>) =>
        log.filter((entry) => entry.endpoint === "revoke").length
      const ours = revokes(yield* mock.log)
      const elsewhere = yield* run(["revoke", "--strava-url", other.server.url], box.env)
      assert.strictEqual(revokes(yield* other.mock.log), 1, elsewhere.stderr)
      assert.strictEqual(revokes(yield* mock.log), ours, elsewhere.stderr)
    }), 60_000)

  it.scopedLive(
    "login: --scope, --port, --no-browser, --force-prompt, --manual, --timeout, --token-file, --client-id, --strava-url",
    () =>
      Effect.gen(function*() {
        const { server } = yield* MockServer.make()
        const box = sandbox(server)
        /** Starts a login with `args`, takes its start address and Strava's authorize URL, and stops it. */
        const authorizeUrl = (args: ReadonlyArray<string>) =>
          Effect.promise(async () => {
            const child = start(["login", "--no-browser", ...args], box.env)
            const done = collect(child)
            child.stdin!.end()
            const startUrl = await firstLine(child)
            const { authorizeUrl } = await visitStart(startUrl)
            child.kill("SIGTERM")
            await done
            return { start: new URL(startUrl), authorize: new URL(authorizeUrl) }
          })
        const plain = yield* authorizeUrl([])
        assert.strictEqual(plain.authorize.searchParams.get("scope"), "read,activity:read")
        assert.strictEqual(plain.authorize.searchParams.get("approval_prompt"), "auto")
        assert.strictEqual(plain.authorize.searchParams.get("client_id"), Simulator.defaultApp.clientId)
        assert.strictEqual(plain.authorize.origin, new URL(server.url).origin)

        assert.strictEqual((yield* authorizeUrl(["--scope", "read"])).authorize.searchParams.get("scope"), "read")
        const port = yield* Effect.promise(freePort)
        assert.strictEqual((yield* authorizeUrl(["--port", String(port)])).start.port, String(port))
        assert.strictEqual(
          (yield* authorizeUrl(["--force-prompt"])).authorize.searchParams.get("approval_prompt"),
          "force"
        )
        assert.strictEqual(
          (yield* authorizeUrl(["--client-id", "4242"])).authorize.searchParams.get("client_id"),
          "4242"
        )
        const elsewhere = `http://127.0.0.1:${yield* Effect.promise(freePort)}`
        assert.strictEqual((yield* authorizeUrl(["--strava-url", elsewhere])).authorize.origin, elsewhere)

        // With a browser at hand (a fake xdg-open), the login opens it unless --no-browser says not to.
        const withOpener = (args: ReadonlyArray<string>) =>
          Effect.promise(() => {
            const opener = fakeOpener(tempDir("opener-"))
            const child = start(["login", "--timeout", "1s", ...args], {
              ...box.env,
              PATH: `${opener.bin}:${box.env["PATH"]}`,
              DISPLAY: ":99"
            })
            child.stdin!.end()
            return collect(child).then(() => opener.argvFile)
          })
        const opened = yield* withOpener([])
        assert.isTrue(Fs.existsSync(opened))
        // The browser gets a local page that leads to the start address (the key stays out of argv).
        assert.match(Fs.readFileSync(opened, "utf8"), /^file:\/\//)
        assert.isFalse(Fs.existsSync(yield* withOpener(["--no-browser"])))

        // --timeout: no redirect within a second ends the login (75); --manual: no server, reads a pasted address.
        const timedOut = yield* run(["login", "--no-browser", "--timeout", "1s"], box.env)
        assert.strictEqual(timedOut.code, 75, timedOut.stderr)
        assert.include(timedOut.stderr, "no redirect from Strava arrived within 1s")
        const manual = yield* run(["login", "--manual", "--timeout", "5s"], box.env, "")
        assert.strictEqual(manual.code, 64, manual.stderr)
        assert.include(manual.stderr, "no address was pasted")

        // --token-file: the login writes there.
        const target = missing(box)
        const { result } = yield* login(box, server, { args: ["--token-file", target] })
        assert.strictEqual(result.code, 0, result.stderr)
        assert.isTrue(Fs.existsSync(target))
        assert.isFalse(Fs.existsSync(box.tokenFile))
      }),
    60_000
  )

  it.scopedLive(
    "daemon: --log-format, --token-file, --socket, --refresh-margin, --client-id, --strava-url",
    () =>
      Effect.gen(function*() {
        const { server } = yield* MockServer.make()
        const other = yield* MockServer.make()
        const box = yield* loggedIn(server)
        const health = (socket = box.socket) =>
          Effect.promise(async () => {
            const reply = await socketGet(socket, "/health")
            return reply._tag === "Reply" ? JSON.parse(reply.body) as Record<string, unknown> : undefined
          })
        // The engine spreads refreshes up to 30 s before the margin (RefreshEngine's scheduleFor).
        const assertNear = (at: number, margin: number) => {
          assert.isAtMost(at, margin)
          assert.isAtLeast(at, margin - 30_000)
        }
        const expiresAt = JSON.parse(Fs.readFileSync(box.tokenFile, "utf8")).expires_at as number
        const scoped = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>) => Effect.scoped(effect)

        // --metrics-listen: a TCP port that answers /metrics, where nothing listens without it.
        const port = yield* Effect.promise(freePort)
        const metricsAt = () =>
          Effect.promise(() =>
            fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.status, () => "refused" as const)
          )
        yield* scoped(Effect.gen(function*() {
          yield* daemon(box, ["--metrics-listen", `127.0.0.1:${port}`])
          assert.strictEqual(yield* metricsAt(), 200)
        }))
        const plainLogs = yield* scoped(Effect.gen(function*() {
          const { result } = yield* daemon(box)
          assert.strictEqual(yield* metricsAt(), "refused")
          const plain = yield* health()
          assert.strictEqual(plain?.["status"], "ok")
          assertNear(Date.parse(String(plain?.["next_refresh_at"])), (expiresAt - 45 * 60) * 1000)
          return result
        }))
        yield* scoped(Effect.gen(function*() {
          yield* daemon(box, ["--refresh-margin", "1h"])
          assertNear(Date.parse(String((yield* health())?.["next_refresh_at"])), (expiresAt - 3600) * 1000)
        }))
        const jsonLogs = yield* scoped(Effect.map(daemon(box, ["--log-format", "json"]), ({ result }) => result))
        const logLines = (text: string) => text.trim().split("\n").filter((line) => line !== "")
        const asLogfmt = logLines((yield* Effect.promise(() => plainLogs)).stderr)
        const asJson = logLines((yield* Effect.promise(() => jsonLogs)).stderr)
        assert.isAbove(asLogfmt.length, 0)
        assert.isTrue(asLogfmt.every((line) => line.startsWith("timestamp=")), asLogfmt.join("\n"))
        assert.isAbove(asJson.length, 0)
        for (const line of asJson) assert.strictEqual(typeof JSON.parse(line).message, "string", line)
        yield* scoped(Effect.gen(function*() {
          yield* daemon(box, ["--token-file", missing(box)])
          assert.strictEqual((yield* health())?.["status"], "needs_login")
        }))
        yield* scoped(Effect.gen(function*() {
          const socket = Path.join(box.dir, "run2", "other.sock")
          yield* daemon({ ...box, socket }, ["--socket", socket])
          assert.strictEqual((yield* health(socket))?.["status"], "ok")
        }))
        // A token due at once: the first refresh runs with the flag's app or Strava.
        const due = { ...box, env: { ...box.env, STRAVA_AUTH_REFRESH_MARGIN: "6h" } }
        yield* scoped(Effect.gen(function*() {
          yield* daemon(due, ["--client-id", "999"])
          const failed = yield* Effect.promise(async () => {
            const until = Date.now() + 15_000
            for (;;) {
              const reply = await socketGet(box.socket, "/health")
              const body = reply._tag === "Reply" ? JSON.parse(reply.body) : {}
              if (typeof body.last_error === "string") return body.last_error as string
              if (Date.now() > until) throw new Error(`no refresh failure reported: ${JSON.stringify(body)}`)
              await new Promise((r) => setTimeout(r, 50))
            }
          })
          assert.match(failed, /client/i)
        }))
        yield* scoped(Effect.gen(function*() {
          yield* daemon(due, ["--strava-url", other.server.url])
          yield* Effect.promise(async () => {
            const until = Date.now() + 15_000
            while (!(await Effect.runPromise(other.mock.log)).some((entry) => entry.endpoint === "token")) {
              if (Date.now() > until) throw new Error("no refresh reached the other Strava")
              await new Promise((r) => setTimeout(r, 50))
            }
          })
        }))
      }),
    90_000
  )

  it.live("systemd-unit: --user (the default, named) and --system", () =>
    Effect.gen(function*() {
      const env = { PATH: process.env["PATH"] ?? "" }
      const plain = yield* run(["systemd-unit"], env)
      const user = yield* run(["systemd-unit", "--user"], env)
      assert.strictEqual(user.code, 0, user.stderr)
      assert.strictEqual(user.stdout, plain.stdout)
      assert.include(user.stdout, "WantedBy=default.target")
      // --system from this checkout: refused, where the user unit is printed.
      const system = yield* run(["systemd-unit", "--system"], env)
      assert.strictEqual(system.code, 78)
      assert.include(system.stderr, `runs from a checkout (${bin})`)
      assert.strictEqual((yield* run(["systemd-unit", "--user", "--system"], env)).code, 64)
    }))

  it.scopedLive(
    "webhook create, view, delete: --callback-url, --verify-token-file, --json, --id, --client-id, --api-url",
    () =>
      Effect.gen(function*() {
        const { server } = yield* MockServer.make()
        const other = yield* MockServer.make()
        const callback = yield* callbackServer("from-the-file")
        const box = sandbox(server) // no STRAVA_WEBHOOK_VERIFY_TOKEN: only the file gives it
        const tokenFile = Path.join(box.dir, "verify-token")
        Fs.writeFileSync(tokenFile, "from-the-file\n", { mode: 0o600 })

        const noToken = yield* run(["webhook", "create", "--callback-url", callback.url], box.env)
        assert.strictEqual(noToken.code, 64)
        assert.include(noToken.stderr, "no verify token")
        const wrongApp = yield* run(
          ["webhook", "create", "--callback-url", callback.url, "--verify-token-file", tokenFile, "--client-id", "999"],
          box.env
        )
        assert.strictEqual(wrongApp.code, 78, wrongApp.stderr)
        const created = yield* run(
          ["webhook", "create", "--callback-url", callback.url, "--verify-token-file", tokenFile],
          box.env
        )
        assert.strictEqual(created.code, 0, created.stderr)
        const id = created.stdout.trim()

        const view = yield* run(["webhook", "view"], box.env)
        assert.strictEqual(view.stdout.trim(), `${id} ${callback.url}`)
        assert.strictEqual(JSON.parse((yield* run(["webhook", "view", "--json"], box.env)).stdout).id, Number(id))
        assert.strictEqual((yield* run(["webhook", "view", "--client-id", "999"], box.env)).code, 78)
        const elsewhere = yield* run(["webhook", "view", "--api-url", other.server.apiUrl], box.env)
        assert.strictEqual(elsewhere.stdout, "")
        assert.include(elsewhere.stderr, "no push subscription")

        // create --api-url: the subscription is made at the other Strava.
        const createdThere = yield* run(
          [
            "webhook",
            "create",
            "--callback-url",
            callback.url,
            "--verify-token-file",
            tokenFile,
            "--api-url",
            other.server.apiUrl
          ],
          box.env
        )
        assert.strictEqual(createdThere.code, 0, createdThere.stderr)
        const there = createdThere.stdout.trim()
        assert.include((yield* run(["webhook", "view", "--api-url", other.server.apiUrl], box.env)).stdout, there)

        // delete: --id names one (an unknown one is Strava's 404); --client-id and --api-url pick the app and Strava.
        const unknown = yield* run(["webhook", "delete", "--id", "987654"], box.env)
        assert.notStrictEqual(unknown.code, 0)
        assert.strictEqual((yield* run(["webhook", "view"], box.env)).stdout.trim(), `${id} ${callback.url}`)
        assert.strictEqual((yield* run(["webhook", "delete", "--client-id", "999"], box.env)).code, 78)
        const deletedThere = yield* run(["webhook", "delete", "--api-url", other.server.apiUrl], box.env)
        assert.include(deletedThere.stderr, `Deleted push subscription ${there}`)
        assert.strictEqual((yield* run(["webhook", "view"], box.env)).stdout.trim(), `${id} ${callback.url}`)
        const deleted = yield* run(["webhook", "delete", "--id", id], box.env)
        assert.include(deleted.stderr, `Deleted push subscription ${id}`)
      }),
    60_000
  )

  it.scopedLive(
    "daemon: --on-token, --on-login-needed, --on-error, --login-notify-interval",
    () =>
      Effect.gen(function*() {
        const { mock, server } = yield* MockServer.make()
        const dir = tempDir("hooks-")
        const mark = (name: string) => `touch '${Path.join(dir, name)}.'$$`
        const count = (name: string) => Fs.readdirSync(dir).filter((f) => f.startsWith(`${name}.`)).length
        const waitFor = (name: string, n = 1) =>
          Effect.promise(async () => {
            const until = Date.now() + 10_000
            while (count(name) < n) {
              if (Date.now() > until) throw new Error(`${name} ran ${count(name)} times, not ${n}`)
              await new Promise((r) => setTimeout(r, 50))
            }
          })
        // No token file: --on-login-needed runs, again after --login-notify-interval.
        const box = sandbox(server)
        yield* Effect.scoped(Effect.gen(function*() {
          yield* daemon(box, ["--on-login-needed", mark("login"), "--login-notify-interval", "1s"])
          yield* waitFor("login", 2)
        }))
        yield* Effect.scoped(Effect.gen(function*() {
          yield* daemon(box, ["--on-login-needed", mark("slow")])
          yield* waitFor("slow", 1)
          yield* Effect.sleep("2 seconds") // the default interval is 15 minutes: no second run
          assert.strictEqual(count("slow"), 1)
        }))
        // A token: --on-token runs; a failed refresh: --on-error runs.
        yield* login(box, server)
        yield* mock.inject({ endpoint: "token", fault: { _tag: "ServerError", status: 503 }, when: { times: 1 } })
        yield* daemon({ ...box, env: { ...box.env, STRAVA_AUTH_REFRESH_MARGIN: "6h" } }, [
          "--on-token",
          mark("token"),
          "--on-error",
          mark("error")
        ])
        yield* waitFor("token")
        yield* waitFor("error")
      }),
    40_000
  )

  it.scopedLive("exec: --token-file, --socket", () =>
    Effect.gen(function*() {
      const { server } = yield* MockServer.make()
      const box = yield* loggedIn(server)
      const print = ["--", process.execPath, "-e", "process.stdout.write(process.env.STRAVA_ACCESS_TOKEN)"]
      assert.strictEqual((yield* run(["exec", ...print], box.env)).stdout, tokenIn(box.tokenFile))
      assert.strictEqual((yield* run(["exec", "--token-file", missing(box), ...print], box.env)).code, 77)
      // A daemon on its own socket gives the token even when this process has no token file.
      const socket = Path.join(box.dir, "run2", "other.sock")
      yield* daemon({ ...box, socket }, ["--socket", socket])
      const viaSocket = yield* run(["exec", "--token-file", missing(box), "--socket", socket, ...print], box.env)
      assert.strictEqual(viaSocket.code, 0, viaSocket.stderr)
      assert.strictEqual(viaSocket.stdout, tokenIn(box.tokenFile))
    }), 30_000)
})
