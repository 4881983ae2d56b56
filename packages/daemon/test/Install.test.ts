// The packages as users get them: `pnpm pack` of each, installed with npm outside the workspace.
// - the command's tarball installs with `npm install -g --offline` (nothing fetched: it has no dependencies) and
//   the installed `strava-auth` logs in, runs the daemon and prints the token, from a directory of its own;
// - the library tarballs install into an app folder (their third-party dependencies, such as `effect`, come
//   from the registry, as in any install) and an ES module and a type-checked TypeScript file import them.
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

import { assert, describe, it } from "@effect/vitest"
import { MockServer, Simulator } from "@strava-auth/testing"
import * as Effect from "effect/Effect"

import { collect, daemon, login, sandbox, socketGet, start, tempDir } from "./harness.js"

const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "../../..")

/** npm's and pnpm's children see only what a user's shell would give them, not pnpm's `npm_config_*`. */
const cleanEnv = (extra: Record<string, string> = {}): Record<string, string> => ({
  PATH: process.env["PATH"] ?? "/usr/bin:/bin",
  HOME: process.env["HOME"] ?? "/root", // npm's cache, as for any install on this machine
  ...extra
})

const pnpm = process.env["npm_execpath"]?.includes("pnpm") === true
  ? [process.execPath, process.env["npm_execpath"]]
  : ["pnpm"]

/** Packs `@strava-auth/<name>` (from its current build) into `dir`; the tarball's path. */
const pack = (name: string, dir: string): string => {
  const [command, ...rest] = pnpm
  const out = execFileSync(command!, [...rest, "--filter", `@strava-auth/${name}`, "pack", "--pack-destination", dir], {
    cwd: root,
    env: cleanEnv(),
    encoding: "utf8"
  })
  const tarball = out.trim().split("\n").map((line) => line.trim()).find((line) => line.endsWith(".tgz"))
  assert.isDefined(tarball, `pnpm pack printed no tarball: ${out}`)
  return tarball!
}

const manifestOf = (tarball: string): Record<string, unknown> =>
  JSON.parse(execFileSync("tar", ["-xzOf", tarball, "package/package.json"], { encoding: "utf8" }))

const npm = (args: ReadonlyArray<string>, cwd: string) =>
  execFileSync("npm", ["--no-audit", "--no-fund", "--loglevel=error", ...args], {
    cwd,
    env: cleanEnv(),
    encoding: "utf8"
  })

describe("installed from the packed tarballs", () => {
  it.scopedLive(
    "`npm install -g --offline` of the command's tarball alone gives a `strava-auth` on PATH that logs in, " +
      "serves and prints the token from any directory",
    () =>
      Effect.gen(function*() {
        const dir = tempDir("sa-install-")
        const tarball = pack("daemon", dir)
        const manifest = manifestOf(tarball)
        // Nothing to fetch: the command is bundled; the library entry's peers are optional.
        assert.isUndefined(manifest["dependencies"])
        assert.deepStrictEqual(
          Object.values(manifest["peerDependenciesMeta"] as Record<string, { optional: boolean }>)
            .every((meta) => meta.optional),
          true
        )
        const prefix = Path.join(dir, "prefix")
        // --offline: any registry look-up (of our packages or anything else) would fail the install.
        npm(["install", "--global", "--offline", "--prefix", prefix, tarball], dir)
        const command = Path.join(prefix, "bin", "strava-auth")
        assert.isTrue(Fs.lstatSync(command).isSymbolicLink())

        const { server } = yield* MockServer.make()
        const box = { ...sandbox(server), command }
        // PATH: the installed command first; the workspace's bin directories are not on it.
        box.env["PATH"] = `${Path.join(prefix, "bin")}:/usr/local/bin:/usr/bin:/bin`
        const { result } = yield* login(box, server)
        assert.strictEqual(result.code, 0, result.stderr)
        yield* daemon(box)
        const served = yield* Effect.promise(() => socketGet(box.socket, "/token"))
        assert.strictEqual(served._tag, "Reply")
        const printed = yield* Effect.promise(() =>
          collect(start(["token"], box.env, { command: "strava-auth", cwd: box.dir }))
        )
        assert.strictEqual(printed.code, 0, printed.stderr)
        assert.strictEqual(printed.stdout.trim(), served._tag === "Reply" ? served.body.trim() : "")
        // The unit it prints runs this installation.
        const unit = yield* Effect.promise(() =>
          collect(start(["systemd-unit", "--user"], box.env, { command: "strava-auth", cwd: box.dir }))
        )
        assert.strictEqual(unit.code, 0, unit.stderr)
        const installed = Fs.realpathSync(Path.join(prefix, "lib/node_modules/@strava-auth/daemon/bin/strava-auth.js"))
        assert.include(unit.stdout, `ExecStart=${process.execPath} ${installed} daemon\n`)
      }),
    120_000
  )

  it.live(
    "the library tarballs install into an app with npm; an ES module and a type-checked TypeScript file import them",
    () =>
      Effect.sync(() => {
        const dir = tempDir("sa-install-")
        const core = pack("core", dir)
        const testing = pack("testing", dir)
        for (const tarball of [core, testing]) {
          const files = execFileSync("tar", ["-tzf", tarball], { encoding: "utf8" }).split("\n")
          for (const file of ["package/LICENSE", "package/README.md", "package/build/index.js"]) {
            assert.include(files, file, `${Path.basename(tarball)} lacks ${file}`)
          }
          assert.include(files, "package/build/index.d.ts")
        }
        const app = Path.join(dir, "app")
        Fs.mkdirSync(app)
        Fs.writeFileSync(Path.join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }))
        const platformNode = JSON.parse(
          Fs.readFileSync(Path.join(root, "node_modules/@effect/platform-node/package.json"), "utf8")
        ).version as string
        npm(["install", core, testing, `@effect/platform-node@${platformNode}`], app)

        // A login against the mock server, with core's programs: the authorize URL, the mock's page, the
        // callback's state check, the exchange.
        const program = `
import { NodeHttpClient } from "@effect/platform-node"
import { Callback, OAuthState, StravaConfig, StravaOAuth } from "@strava-auth/core"
import { MockServer, Simulator } from "@strava-auth/testing"
import { Console, Effect, Layer } from "effect"

const main = Effect.gen(function*() {
  const { mock, server } = yield* MockServer.make()
  const app = Simulator.defaultApp
  const OAuth = StravaOAuth.layer.pipe(
    Layer.provide(StravaConfig.layer({ clientId: app.clientId, clientSecret: app.clientSecret, baseUrl: server.url, apiUrl: server.apiUrl })),
    Layer.provide(NodeHttpClient.layerUndici)
  )
  yield* Effect.gen(function*() {
    const oauth = yield* StravaOAuth.StravaOAuth
    const state = yield* OAuthState.generate
    const url = yield* oauth.authorizeUrl({ redirectUri: "http://127.0.0.1:9/callback", state, scope: ["read"] })
    const redirect = yield* mock.approve(url, { athleteId: Simulator.defaultAthlete.id })
    const callback = yield* Callback.parse(redirect, { state })
    const tokens = yield* oauth.exchangeCode(callback)
    yield* Console.log(String(tokens.athlete?.id))
  }).pipe(Effect.provide(OAuth))
}).pipe(Effect.scoped)

Effect.runPromise(main).then(() => process.exit(0), (e) => { console.error(e); process.exit(1) })
`
        Fs.writeFileSync(Path.join(app, "main.mjs"), program)
        const out = execFileSync(process.execPath, ["main.mjs"], { cwd: app, env: cleanEnv(), encoding: "utf8" })
        assert.strictEqual(out.trim(), String(Simulator.defaultAthlete.id))

        // The same file as TypeScript, checked against the packages' own types as an app's compiler sees them.
        Fs.writeFileSync(Path.join(app, "main.ts"), program)
        execFileSync(
          process.execPath,
          [
            Path.join(root, "node_modules/typescript/bin/tsc"),
            "--noEmit",
            "--strict",
            "--skipLibCheck",
            "--module",
            "nodenext",
            "--moduleResolution",
            "nodenext",
            "--target",
            "es2022",
            "--types",
            "node",
            "--typeRoots",
            Path.join(root, "node_modules/@types"),
            "main.ts"
          ],
          { cwd: app, env: cleanEnv(), encoding: "utf8" }
        )
      }),
    180_000
  )
})
