// The daemon's hooks (STRAVA_AUTH_ON_TOKEN, _ON_LOGIN_NEEDED, _ON_ERROR), run by the real daemon through
// /bin/sh: what each gets (the token only on ON_TOKEN's stdin; never the secret), when each runs, and that a
// hook neither blocks serving nor outlives its timeout, its exit being logged.
import * as Fs from "node:fs"
import * as Path from "node:path"

import { assert, describe, it } from "@effect/vitest"
import { MockServer, Simulator } from "@strava-auth/testing"
import * as Effect from "effect/Effect"

import { daemon, eventually, login, sandbox, socketGet, tempDir } from "./harness.js"

/** A hook script that records, per run, its argv, environment and stdin into `out/<name>.<n>`. */
const recorder = (dir: string, name: string) => {
  const out = Path.join(dir, "runs")
  Fs.mkdirSync(out, { recursive: true })
  const script = Path.join(dir, `${name}.sh`)
  Fs.writeFileSync(
    script,
    `#!/bin/sh\nf="${out}/${name}.$$"\n{ echo "ARGV=$0 $*"; env | sort; echo "STDIN:"; cat; } > "$f.tmp" && mv "$f.tmp" "$f"\n`,
    { mode: 0o755 }
  )
  const runs = () =>
    Fs.readdirSync(out).filter((f) => f.startsWith(`${name}.`) && !f.endsWith(".tmp")).map((f) =>
      Fs.readFileSync(Path.join(out, f), "utf8")
    )
  return { script, runs }
}

const variable = (run: string, name: string) =>
  run.split("\n").find((l) => l.startsWith(`${name}=`))?.slice(name.length + 1)
const stdinOf = (run: string) => run.slice(run.indexOf("STDIN:\n") + "STDIN:\n".length)

describe("hooks", () => {
  it.scopedLive(
    "ON_TOKEN runs with each new token on its stdin (never in argv or env), with the account and expiry",
    () =>
      Effect.gen(function*() {
        const { mock, server } = yield* MockServer.make()
        const box = sandbox(server)
        yield* login(box, server)
        const hook = recorder(tempDir("hook-"), "on-token")
        const { child } = yield* daemon({ ...box, env: { ...box.env, STRAVA_AUTH_ON_TOKEN: hook.script } })
        // The token the daemon loaded at start.
        const first = yield* eventually(async () => hook.runs()[0], 10_000, "the first ON_TOKEN run")
        const token = JSON.parse(Fs.readFileSync(box.tokenFile, "utf8"))
        assert.strictEqual(stdinOf(first), `${token.access_token}\n`)
        assert.strictEqual(variable(first, "STRAVA_AUTH_ACCOUNT"), "default")
        assert.strictEqual(variable(first, "STRAVA_AUTH_EXPIRES_AT"), String(token.expires_at))
        // A new token (Strava mints one once less than an hour is left): the hook runs again, with it.
        yield* mock.expireAccessTokens("30 minutes")
        const refreshed = yield* Effect.promise(() => socketGet(box.socket, "/refresh", "POST"))
        assert.strictEqual(refreshed._tag, "Reply")
        const second = yield* eventually(async () => hook.runs().length >= 2 || undefined, 10_000, "a second run")
        void second
        const fresh = JSON.parse(Fs.readFileSync(box.tokenFile, "utf8"))
        assert.notStrictEqual(fresh.access_token, token.access_token)
        assert.isTrue(hook.runs().some((run) => stdinOf(run) === `${fresh.access_token}\n`))
        for (const run of hook.runs()) {
          const [argv, ...rest] = run.split("STDIN:")[0]!.split("\n")
          for (
            const secret of [
              token.access_token,
              fresh.access_token,
              token.refresh_token,
              Simulator.defaultApp.clientSecret
            ]
          ) {
            assert.notInclude(argv, secret)
            assert.notInclude(rest.join("\n"), secret)
          }
          assert.isUndefined(variable(run, "STRAVA_CLIENT_SECRET"))
        }
        assert.isNull(child.exitCode)
      }),
    30_000
  )

  it.scopedLive(
    "per account: ON_TOKEN with the account's own token and name; ON_LOGIN_NEEDED names the account's login",
    () =>
      Effect.gen(function*() {
        const { mock, server } = yield* MockServer.make({
          athletes: [Simulator.defaultAthlete, { ...Simulator.defaultAthlete, id: 2002 }]
        })
        const box = sandbox(server)
        yield* login(box, server)
        yield* login(box, server, { athleteId: 2002, args: ["--account", "club"] })
        const clubFile = Path.join(Path.dirname(box.tokenFile), "accounts", "club.json")
        const onToken = recorder(tempDir("hook-"), "on-token")
        const onLogin = recorder(tempDir("hook-"), "on-login")
        yield* daemon({
          ...box,
          env: { ...box.env, STRAVA_AUTH_ON_TOKEN: onToken.script, STRAVA_AUTH_ON_LOGIN_NEEDED: onLogin.script }
        })
        const runs = yield* eventually(
          async () => {
            const all = onToken.runs()
            return all.length >= 2 ? all : undefined
          },
          10_000,
          "ON_TOKEN for both accounts"
        )
        const byAccount = new Map(runs.map((run) => [variable(run, "STRAVA_AUTH_ACCOUNT"), stdinOf(run)]))
        assert.strictEqual(
          byAccount.get("default"),
          `${JSON.parse(Fs.readFileSync(box.tokenFile, "utf8")).access_token}\n`
        )
        assert.strictEqual(byAccount.get("club"), `${JSON.parse(Fs.readFileSync(clubFile, "utf8")).access_token}\n`)
        assert.strictEqual(onLogin.runs().length, 0)
        // The club's grant revoked at Strava: its next refresh is refused, and its login is asked for by name.
        const club = JSON.parse(Fs.readFileSync(clubFile, "utf8"))
        yield* mock.revokeAthlete(2002)
        yield* Effect.promise(() => socketGet(box.socket, "/refresh?account=club", "POST"))
        const needed = yield* eventually(async () => onLogin.runs()[0], 10_000, "ON_LOGIN_NEEDED for club")
        assert.strictEqual(variable(needed, "STRAVA_AUTH_ACCOUNT"), "club")
        assert.include(variable(needed, "STRAVA_AUTH_LOGIN_COMMAND"), "strava-auth login --account=club")
        assert.notInclude(needed, club.refresh_token)
        // default is still served.
        const reply = yield* Effect.promise(() => socketGet(box.socket, "/token"))
        assert.strictEqual(reply._tag === "Reply" && reply.status, 200)
      }),
    30_000
  )

  it.scopedLive(
    "ON_LOGIN_NEEDED runs at once and every interval until a login, with the command to run",
    () =>
      Effect.gen(function*() {
        const { server } = yield* MockServer.make()
        const box = sandbox(server)
        const hook = recorder(tempDir("hook-"), "login-needed")
        yield* daemon({
          ...box,
          env: { ...box.env, STRAVA_AUTH_ON_LOGIN_NEEDED: hook.script, STRAVA_AUTH_LOGIN_NOTIFY_INTERVAL: "1s" }
        })
        const first = yield* eventually(async () => hook.runs()[0], 10_000, "the first reminder")
        assert.strictEqual(
          variable(first, "STRAVA_AUTH_LOGIN_COMMAND"),
          `strava-auth login --token-file '${box.tokenFile}'`
        )
        assert.isUndefined(variable(first, "STRAVA_CLIENT_SECRET"))
        assert.notInclude(first, Simulator.defaultApp.clientSecret)
        assert.strictEqual(variable(first, "STRAVA_AUTH_ACCOUNT"), "default")
        yield* eventually(async () => hook.runs().length >= 3 || undefined, 10_000, "three reminders a second apart")
        // Logged in: the reminders stop.
        yield* login(box, server)
        yield* eventually(
          async () =>
            (await socketGet(box.socket, "/health"))._tag === "Reply" &&
              JSON.parse(((await socketGet(box.socket, "/health")) as { body: string }).body).status === "ok" ||
            undefined,
          10_000,
          "the daemon to adopt the login"
        )
        const after = hook.runs().length
        yield* Effect.sleep("2500 millis")
        assert.strictEqual(hook.runs().length, after)
      }),
    40_000
  )

  it.scopedLive(
    "ON_ERROR runs after a failed refresh with what failed; a slow hook neither blocks serving nor outlives its timeout",
    () =>
      Effect.gen(function*() {
        const { mock, server } = yield* MockServer.make()
        const box = sandbox(server)
        yield* login(box, server)
        const dir = tempDir("hook-")
        const hook = recorder(dir, "on-error")
        // ON_TOKEN hangs: the daemon serves anyway, and kills it after the timeout (logged).
        yield* mock.inject({ endpoint: "token", fault: { _tag: "ServerError", status: 503 }, when: { times: 1 } })
        const { result, child } = yield* daemon({
          ...box,
          env: {
            ...box.env,
            STRAVA_AUTH_REFRESH_MARGIN: "6h",
            STRAVA_AUTH_ON_ERROR: `${hook.script}; exit 3`,
            // a list of its own: the timeout must kill all of it, not only the shell
            STRAVA_AUTH_ON_TOKEN: `sleep 30; touch '${Path.join(dir, "survived")}'`,
            STRAVA_AUTH_HOOK_TIMEOUT: "1s"
          }
        })
        const failed = yield* eventually(async () => hook.runs()[0], 15_000, "ON_ERROR")
        assert.match(variable(failed, "STRAVA_AUTH_ERROR") ?? "", /503|Strava/)
        assert.isUndefined(variable(failed, "STRAVA_CLIENT_SECRET"))
        const secrets = JSON.parse(Fs.readFileSync(box.tokenFile, "utf8"))
        for (const secret of [secrets.access_token, secrets.refresh_token, Simulator.defaultApp.clientSecret]) {
          assert.notInclude(failed, secret)
        }
        assert.strictEqual(variable(failed, "STRAVA_AUTH_ACCOUNT"), "default")
        // Serving while ON_TOKEN sleeps.
        const served = yield* Effect.promise(() => socketGet(box.socket, "/token"))
        assert.strictEqual(served._tag === "Reply" ? served.status : 0, 200)
        // ON_TOKEN started with the first turn of the loop; a second and a half later it is killed.
        yield* Effect.sleep("1500 millis")
        child.kill("SIGTERM")
        const logs = (yield* Effect.promise(() => result)).stderr.split("\n")
        assert.isTrue(
          logs.some((l) => /message="hook failed"/.test(l) && /hook=on_token/.test(l) && /signal=SIGKILL/.test(l))
        )
        assert.isTrue(
          logs.some((l) => /message="hook failed"/.test(l) && /hook=on_error/.test(l) && /exit_code=3/.test(l))
        )
        // Killed whole: the shell's child (sleep) did not go on to run what came after it.
        yield* Effect.sleep("500 millis")
        assert.isFalse(Fs.existsSync(Path.join(dir, "survived")))
      }),
    40_000
  )
})
