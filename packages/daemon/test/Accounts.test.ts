// Several accounts in one installation, through the real command and socket: each with its own token file and,
// when it has one, its own app; the daemon refreshes each on its own and serves each by name; an account logged in
// while the daemon runs is picked up without a restart; one account's hang never holds another's refresh.
import * as Fs from "node:fs"
import * as Path from "node:path"

import { assert, describe, it } from "@effect/vitest"
import { MockServer, Simulator } from "@strava-auth/testing"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
// @ts-expect-error: the parser ships no types
import parsePrometheusTextFormat from "parse-prometheus-text-format"

import * as DaemonTokenSource from "../src/DaemonTokenSource.js"
import * as Wire from "../src/Wire.js"
import { daemon, eventually, login, run, sandbox, socketGet } from "./harness.js"
import { killHelpersAtEnd } from "./processes.js"

const clubApp: Simulator.App = {
  clientId: "777",
  clientSecret: "club-app-secret-fedcba9876543210",
  name: "the club's app",
  callbackDomain: "localhost",
  active: true
}
const clubAthlete: Simulator.Athlete = {
  ...Simulator.defaultAthlete,
  id: 2002,
  username: "club_athlete",
  firstname: "Clara"
}

const mockWithTwoApps = () =>
  MockServer.make({ apps: [Simulator.defaultApp, clubApp], athletes: [Simulator.defaultAthlete, clubAthlete] })

/** The sandbox, and the club app's secret in a 0600 file (the account remembers its path, never the secret). */
const setUp = (server: MockServer.MockServerShape, extra: Record<string, string> = {}) => {
  const box = sandbox(server, extra)
  const secretFile = Path.join(box.dir, "club-secret")
  Fs.writeFileSync(secretFile, `${clubApp.clientSecret}\n`, { mode: 0o600 })
  const clubFile = Path.join(Path.dirname(box.tokenFile), "accounts", "club.json")
  const settingsFile = Path.join(Path.dirname(box.tokenFile), "accounts", "club.settings.json")
  return { box, secretFile, clubFile, settingsFile }
}

const loginClub = (
  box: ReturnType<typeof sandbox>,
  server: MockServer.MockServerShape,
  secretFile: string
) =>
  login(box, server, {
    athleteId: clubAthlete.id,
    args: ["--account", "club", "--client-id", clubApp.clientId, "--client-secret-file", secretFile]
  })

const accessTokenOf = (file: string): string => JSON.parse(Fs.readFileSync(file, "utf8")).access_token

const accountsOf = (socket: string) =>
  Effect.promise(async () => {
    const reply = await socketGet(socket, "/accounts")
    assert.strictEqual(reply._tag, "Reply")
    const decoded = Wire.decodeAccountsReply(reply._tag === "Reply" ? reply.body : "")
    assert.isTrue(decoded._tag === "Some", "GET /accounts answers its schema")
    return decoded._tag === "Some" ? decoded.value.accounts : []
  })

describe("accounts", () => {
  it.scopedLive(
    "login --account with its own app, picked up by a running daemon; served by name, listed, shown, revoked",
    () =>
      Effect.gen(function*() {
        const { mock, server } = yield* mockWithTwoApps()
        const { box, clubFile, secretFile, settingsFile } = setUp(server)
        assert.strictEqual((yield* login(box, server)).result.code, 0)
        yield* daemon(box)

        // A second account, with the club's app, logged in while the daemon runs.
        const club = yield* loginClub(box, server, secretFile)
        assert.strictEqual(club.result.code, 0, club.result.stderr)
        assert.include(club.result.stderr, "The account club uses the app 777")
        assert.strictEqual(Fs.statSync(clubFile).mode & 0o777, 0o600)
        assert.strictEqual(Fs.statSync(Path.dirname(clubFile)).mode & 0o777, 0o700)
        const settings = JSON.parse(Fs.readFileSync(settingsFile, "utf8"))
        assert.deepStrictEqual(settings, { version: 1, client_id: "777", client_secret_file: secretFile })
        assert.notInclude(Fs.readFileSync(settingsFile, "utf8"), clubApp.clientSecret)
        assert.strictEqual(Fs.statSync(settingsFile).mode & 0o777, 0o600)
        // The default account's file is where it always was, with its own athlete.
        assert.strictEqual(JSON.parse(Fs.readFileSync(box.tokenFile, "utf8")).athlete.id, 1001)

        // Picked up without a restart: the socket serves it by name.
        const served = yield* eventually(
          async () => {
            const reply = await socketGet(box.socket, "/token?account=club")
            return reply._tag === "Reply" && reply.status === 200 ? reply.body : undefined
          },
          15_000,
          "the daemon to serve the new account"
        )
        assert.strictEqual(served, accessTokenOf(clubFile))
        const json = yield* Effect.promise(() => socketGet(box.socket, "/token.json?account=club"))
        assert.strictEqual(json._tag === "Reply" && JSON.parse(json.body).athlete_id, clubAthlete.id)
        const plain = yield* Effect.promise(() => socketGet(box.socket, "/token"))
        assert.strictEqual(plain._tag === "Reply" && plain.body, accessTokenOf(box.tokenFile))
        assert.notStrictEqual(accessTokenOf(box.tokenFile), accessTokenOf(clubFile))

        // An account the daemon does not serve: a 404 that names it, on every per-account path.
        for (const path of ["/token", "/token.json", "/health"]) {
          const unknown = yield* Effect.promise(() => socketGet(box.socket, `${path}?account=nobody`))
          assert.strictEqual(unknown._tag === "Reply" && unknown.status, 404, path)
          const error = Wire.decodeErrorReply(unknown._tag === "Reply" ? unknown.body : "")
          assert.strictEqual(error._tag === "Some" && error.value.error, "unknown_account")
          assert.include(error._tag === "Some" ? error.value.message : "", "\"nobody\"")
        }

        // Listed with their status.
        const listed = yield* accountsOf(box.socket)
        assert.deepStrictEqual(listed.map((a) => [a.account, a.status, a.athlete_id]), [
          ["default", "ok", 1001],
          ["club", "ok", clubAthlete.id]
        ])

        // The commands act on the account they are given.
        const token = yield* run(["token", "--account", "club"], box.env)
        assert.strictEqual(token.stdout.trim(), accessTokenOf(clubFile))
        const fromVariable = yield* run(["token"], { ...box.env, STRAVA_AUTH_ACCOUNT: "club" })
        assert.strictEqual(fromVariable.stdout.trim(), accessTokenOf(clubFile))
        assert.strictEqual((yield* run(["token"], box.env)).stdout.trim(), accessTokenOf(box.tokenFile))
        // An account the daemon does not serve (yet: a login a moment ago) is looked for in its file.
        const nobody = yield* run(["token", "--account", "nobody"], box.env)
        assert.strictEqual(nobody.code, 77)
        assert.include(nobody.stderr, "accounts/nobody.json: the account nobody is not logged in")
        // An app's socket source, for one account.
        const source = DaemonTokenSource.makeSocket(box.socket, { account: "club" })
        assert.strictEqual(Redacted.value(yield* source.get), accessTokenOf(clubFile))
        const unknown = yield* Effect.flip(DaemonTokenSource.makeSocket(box.socket, { account: "nobody" }).get)
        assert.strictEqual(unknown._tag, "LoginRequired")
        assert.include(unknown.message, "\"nobody\"")
        // Without a daemon, from the account's file (the fast path and the full one).
        const fileOnly = yield* run(["token", "--account", "club", "--token-file", box.tokenFile], box.env)
        assert.strictEqual(fileOnly.stdout.trim(), accessTokenOf(clubFile))

        // A refresh of the club's account runs with the club's app (its secret from the file, none in env).
        const before = (yield* mock.log).length
        const refreshed = yield* run(["refresh", "--account", "club", "--json"], box.env)
        assert.strictEqual(refreshed.code, 0, refreshed.stderr)
        assert.strictEqual(JSON.parse(refreshed.stdout).athlete_id, clubAthlete.id)
        const asked = (yield* mock.log).slice(before).filter((e) => e.endpoint === "token")
        assert.deepStrictEqual(asked.map((e) => [e.clientId, e.status]), [["777", 200]])

        // status: every account; --account: one.
        const all = yield* run(["status", "--json"], box.env)
        assert.strictEqual(all.code, 0, all.stderr)
        const report = JSON.parse(all.stdout)
        assert.deepStrictEqual(report.accounts.map((a: { account: string }) => a.account), ["default", "club"])
        assert.strictEqual(report.account, "default")
        assert.deepStrictEqual(report.accounts.map((a: { daemon_status: string }) => a.daemon_status), ["ok", "ok"])
        const text = yield* run(["status"], box.env)
        assert.match(text.stdout, /^account:\s+default$/m)
        assert.match(text.stdout, /^account:\s+club$/m)
        const one = JSON.parse((yield* run(["status", "--account", "club", "--json"], box.env)).stdout)
        assert.strictEqual(one.account, "club")
        assert.strictEqual(one.athlete.id, clubAthlete.id)
        assert.strictEqual(one.accounts.length, 1)

        // Per-account metrics.
        const metrics = yield* Effect.promise(() => socketGet(box.socket, "/metrics"))
        const families = parsePrometheusTextFormat(metrics._tag === "Reply" ? metrics.body : "") as Array<
          { name: string; metrics: Array<{ labels?: Record<string, string> }> }
        >
        const expiry = families.find((f) => f.name === "strava_auth_token_expires_in_seconds")
        assert.deepStrictEqual(expiry?.metrics.map((m) => m.labels?.["account"]), ["default", "club"])

        // revoke --account: that grant revoked with the club's app, the account gone; default untouched.
        const revoked = yield* run(["revoke", "--account", "club"], box.env)
        assert.strictEqual(revoked.code, 0, revoked.stderr)
        assert.isFalse(Fs.existsSync(clubFile))
        assert.isFalse(Fs.existsSync(settingsFile))
        assert.isUndefined(mock.simulator.liveRefreshToken(clubAthlete.id, clubApp.clientId))
        yield* eventually(
          async () => {
            const reply = await socketGet(box.socket, "/token?account=club")
            return reply._tag === "Reply" && reply.status === 404 ? true : undefined
          },
          15_000,
          "the daemon to stop serving the revoked account"
        )
        assert.deepStrictEqual((yield* accountsOf(box.socket)).map((a) => a.account), ["default"])
        assert.strictEqual((yield* run(["token"], box.env)).stdout.trim(), accessTokenOf(box.tokenFile))
      }),
    90_000
  )

  it.scopedLive(
    "one account's Strava call hanging does not hold another account's refresh",
    () =>
      Effect.gen(function*() {
        const { mock, server } = yield* mockWithTwoApps()
        const { box, clubFile, secretFile } = setUp(server)
        assert.strictEqual((yield* login(box, server)).result.code, 0)
        assert.strictEqual((yield* loginClub(box, server, secretFile)).result.code, 0)
        yield* killHelpersAtEnd(box.tokenFile)
        // The club's app: its first refresh hangs (until the helper's 10 s timeout); the default app answers.
        yield* mock.inject({
          endpoint: "token",
          clientId: clubApp.clientId,
          fault: { _tag: "Hang" },
          when: { times: 1 }
        })
        yield* daemon(box)
        // The club's refresh asked for, and hanging at Strava (not awaited: it answers after the helper's timeout).
        const clubRefresh = Effect.runPromise(
          Effect.promise(() => socketGet(box.socket, "/refresh?account=club", "POST"))
        )
        yield* eventually(
          async () => {
            const log = await Effect.runPromise(mock.log)
            return log.some((e) => e.clientId === clubApp.clientId && e.status === "hang") ? true : undefined
          },
          15_000,
          "the club's call to hang"
        )
        // Meanwhile the default account refreshes at Strava: its answer comes while the club's call still hangs
        // (were the two refreshes serialized, it would come after the club's timeout, the club then retrying).
        const refreshed = yield* Effect.promise(() => socketGet(box.socket, "/refresh", "POST"))
        assert.strictEqual(refreshed._tag === "Reply" && refreshed.status, 200)
        assert.strictEqual(refreshed._tag === "Reply" && JSON.parse(refreshed.body).outcome, "same")
        const club = (yield* accountsOf(box.socket)).find((a) => a.account === "club")
        assert.strictEqual(club?.status, "refreshing")
        const fromDefault = (yield* mock.log).filter((e) =>
          e.clientId === Simulator.defaultApp.clientId && e.grantType === "refresh_token"
        )
        assert.deepStrictEqual(fromDefault.map((e) => e.status), [200])
        yield* Effect.promise(() => clubRefresh)
        // The club's token is still served (valid for hours) once its call has given up.
        const reply = yield* Effect.promise(() => socketGet(box.socket, "/token?account=club"))
        assert.strictEqual(reply._tag === "Reply" && reply.body, accessTokenOf(clubFile))
      }),
    90_000
  )

  it.scopedLive(
    "exec, dump and restore --account: the named account's token, its grant moved to another account's file",
    () =>
      Effect.gen(function*() {
        const { server } = yield* mockWithTwoApps()
        const { box, clubFile, secretFile } = setUp(server)
        assert.strictEqual((yield* login(box, server)).result.code, 0)
        assert.strictEqual((yield* loginClub(box, server, secretFile)).result.code, 0)
        const clubToken = accessTokenOf(clubFile)
        // No daemon: token's fast path reads the account's own file (not the default one).
        const fast = yield* run(["token", "--account", "club"], box.env)
        assert.strictEqual(fast.stdout.trim(), clubToken, fast.stderr)
        assert.notStrictEqual(clubToken, accessTokenOf(box.tokenFile))

        // exec: the command runs with the account's token and name; its status is exec's.
        const out = Path.join(box.dir, "exec-out")
        const exec = yield* run([
          "exec",
          "--account",
          "club",
          "--",
          "sh",
          "-c",
          `printf '%s %s' "$STRAVA_AUTH_ACCOUNT" "$STRAVA_ACCESS_TOKEN" > '${out}'; exit 3`
        ], box.env)
        assert.strictEqual(exec.code, 3, exec.stderr)
        assert.strictEqual(Fs.readFileSync(out, "utf8"), `club ${clubToken}`)

        // dump --account: the club's grant written out, its file set aside; restore --account writes it under
        // another name (0600), and default is untouched throughout.
        const defaultBefore = Fs.readFileSync(box.tokenFile, "utf8")
        const dumped = yield* run(["dump", "--account", "club"], box.env)
        assert.strictEqual(dumped.code, 0, dumped.stderr)
        assert.strictEqual(JSON.parse(dumped.stdout).access_token, clubToken)
        assert.isFalse(Fs.existsSync(clubFile))
        const restored = yield* run(["restore", "--account", "moved"], box.env, dumped.stdout)
        assert.strictEqual(restored.code, 0, restored.stderr)
        const movedFile = Path.join(Path.dirname(clubFile), "moved.json")
        assert.strictEqual(accessTokenOf(movedFile), clubToken)
        assert.strictEqual(Fs.statSync(movedFile).mode & 0o777, 0o600)
        assert.strictEqual(Fs.readFileSync(box.tokenFile, "utf8"), defaultBefore)
        const token = yield* run(["token", "--account", "moved"], box.env)
        assert.strictEqual(token.stdout.trim(), clubToken)
        // A malformed name is a usage error that says what a name is.
        const bad = yield* run(["token", "--account", "../etc"], box.env)
        assert.strictEqual(bad.code, 64)
        assert.include(bad.stderr, "--account takes an account name of letters, digits, - and _")
      }),
    60_000
  )
})
