// The command line's grammar and help (Usage.ts), and the same seen through the real command: plain help
// when piped, one line per flag, usage errors that name the command and point at its --help (exit 64).
import { execFileSync, spawn } from "node:child_process"

import { assert, describe, it } from "@effect/vitest"
import { MockServer } from "@strava-auth/testing"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"

import * as Usage from "../src/Usage.js"
import { bin, freePort, login, run, sandbox } from "./harness.js"

const env = { PATH: process.env["PATH"] ?? "" }
const invalid = (args: ReadonlyArray<string>) => {
  const parsed = Usage.parse(args)
  assert.strictEqual(parsed._tag, "Invalid", args.join(" "))
  return parsed as Extract<Usage.Parsed, { _tag: "Invalid" }>
}
const runs = (args: ReadonlyArray<string>) => {
  const parsed = Usage.parse(args)
  assert.strictEqual(parsed._tag, "Run", parsed._tag === "Invalid" ? parsed.problem : args.join(" "))
  return parsed as Extract<Usage.Parsed, { _tag: "Run" }>
}

const escape = /\u001b/

describe("Usage.parse", () => {
  it("values: booleans false unless given, optional flags as Option, defaults, both --flag VALUE and --flag=VALUE", () => {
    const token = runs(["token", "--json", "--socket=/run/s.sock"])
    assert.strictEqual(token.name, "token")
    assert.strictEqual(token.values["json"], true)
    assert.deepStrictEqual(token.values["socket"], Option.some("/run/s.sock"))
    assert.deepStrictEqual(token.values["tokenFile"], Option.none())
    const login = runs(["login", "--port", "8123"])
    assert.strictEqual(login.values["port"], 8123)
    assert.strictEqual(login.values["scope"], "read,activity:read")
    assert.strictEqual(login.values["noBrowser"], false)
    const create = runs(["webhook", "create", "--callback-url", "https://a.example/hook"])
    assert.strictEqual(create.name, "webhookCreate")
    assert.strictEqual(create.values["callbackUrl"], "https://a.example/hook")
    assert.deepStrictEqual(runs(["webhook", "delete", "--id", "7"]).values["id"], Option.some(7))
  })

  it("usage errors name the command and say what is wrong", () => {
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string, string]> = [
      [["token", "--bogus"], "token", "unknown flag --bogus."],
      [["token", "--jsn"], "token", "unknown flag --jsn. Did you mean --json?"],
      [["tokn"], "", "'tokn' is not a command. Did you mean 'token'?"],
      [["--bogus"], "", "unknown flag --bogus; a command comes first."],
      [
        ["--socket", "/s", "token", "--json"],
        "",
        "flags go after the command's name: `strava-auth token --socket /s --json`."
      ],
      [["--json", "webhook", "view"], "", "flags go after the command's name: `strava-auth webhook view --json`."],
      [["login", "--port", "abc"], "login", "--port takes a whole number (N); got 'abc'."],
      [["login", "--port"], "login", "--port needs a value: --port N."],
      [["token", "--socket", "--json"], "token", "--socket needs a value: --socket PATH."],
      [["token", "--json", "--json"], "token", "--json is given twice."],
      [["token", "--json=yes"], "token", "--json takes no value."],
      [["daemon", "--log-format", "xml"], "daemon", "--log-format takes logfmt or json; got 'xml'."],
      [["status", "now"], "status", "unexpected argument 'now'; it takes only flags."],
      [["webhook"], "webhook", "which one: create, view or delete?"],
      [["webhook", "list"], "webhook", "'list' is not a webhook command (create, view, delete)."],
      [["webhook", "create"], "webhook create", "--callback-url URL is required."],
      [["status", "--strava-url", "http://x"], "status", "unknown flag --strava-url."],
      [["systemd-unit", "--token-file", "/x"], "systemd-unit", "unknown flag --token-file."]
    ]
    for (const [args, command, problem] of cases) {
      const parsed = invalid(args)
      assert.strictEqual(parsed.command, command, args.join(" "))
      assert.strictEqual(parsed.problem, problem, args.join(" "))
    }
    assert.strictEqual(
      Usage.usageMessage("token", "unknown flag --bogus."),
      "strava-auth token: unknown flag --bogus.\nRun `strava-auth token --help` for usage."
    )
  })

  it("--help and -h anywhere after the command, `help COMMAND`, and --version", () => {
    for (
      const args of [["token", "--help"], ["token", "--json", "-h"], ["help", "token"], ["token", "--bogus", "--help"]]
    ) {
      const parsed = Usage.parse(args)
      assert.strictEqual(parsed._tag, "Help", args.join(" "))
      assert.strictEqual((parsed as { text: string }).text, Usage.helpOf("token"))
    }
    assert.strictEqual(
      (Usage.parse(["help", "webhook", "create"]) as { text: string }).text,
      Usage.helpOf("webhookCreate")
    )
    assert.strictEqual(Usage.parse([])._tag, "Help")
    assert.strictEqual(Usage.parse(["--version"])._tag, "Version")
  })
})

describe("the help", () => {
  it("one line per flag, with its placeholder, what it does and its variable; no filler", () => {
    for (const [name, spec] of Object.entries(Usage.commands) as Array<[Usage.Name, Usage.Spec]>) {
      const help = Usage.helpOf(name)
      assert.notMatch(help, escape)
      assert.notInclude(help, "A user-defined piece of text")
      assert.notInclude(help, "This setting is optional")
      assert.notInclude(help, "--wizard")
      assert.notInclude(help, "--completions")
      if (name === "webhook") continue
      assert.include(help, `Usage: strava-auth ${spec.name}`)
      const lines = help.split("\n")
      for (const flag of spec.flags) {
        const line = lines.filter((l) =>
          l.trimStart().startsWith(`--${flag.name}${flag.value ? ` ${flag.value}` : ""} `)
        )
        assert.strictEqual(line.length, 1, `${spec.name} --${flag.name}`)
        assert.include(line[0], flag.description)
        if (flag.env !== undefined) assert.include(line[0], `(env ${flag.env})`)
      }
    }
  })

  it("bold headings only on a terminal without NO_COLOR, and not for TERM=dumb", () => {
    assert.notMatch(Usage.helpOf("token", Usage.styleFor(false, {})), escape)
    assert.notMatch(Usage.helpOf("token", Usage.styleFor(true, { NO_COLOR: "1" })), escape)
    assert.notMatch(Usage.helpOf("token", Usage.styleFor(true, { TERM: "dumb" })), escape)
    assert.match(Usage.helpOf("token", Usage.styleFor(true, {})), escape)
  })

  it.live("through the command: plain help when piped or with NO_COLOR on a terminal, bold on a terminal", () =>
    Effect.gen(function*() {
      const piped = yield* run(["token", "--help"], env)
      assert.strictEqual(piped.code, 0)
      assert.strictEqual(piped.stdout.trimEnd(), Usage.helpOf("token"))
      const root = yield* run(["--help"], env)
      assert.strictEqual(root.stdout.trimEnd(), Usage.helpOf(undefined))
      assert.include(root.stdout, "Usage: strava-auth COMMAND [flags]")
      // A real terminal: python's pty runs the command with its stdout on a pseudo-terminal.
      const onTerminal = (extra: Record<string, string>) =>
        execFileSync(
          "python3",
          ["-c", "import pty, sys; pty.spawn(sys.argv[1:])", process.execPath, bin, "token", "--help"],
          { env: { ...env, TERM: "xterm", ...extra }, encoding: "utf8" }
        )
      assert.match(onTerminal({}), escape)
      assert.notMatch(onTerminal({ NO_COLOR: "1" }), escape)
    }))

  it.live("through the command: usage errors exit 64 on stderr, name the command and its --help, print nothing on stdout", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
        [["token", "--bogus"], "strava-auth token: unknown flag --bogus.\nRun `strava-auth token --help` for usage.\n"],
        [
          ["--bogus"],
          "strava-auth: unknown flag --bogus; a command comes first.\nRun `strava-auth --help` for usage.\n"
        ],
        [
          ["login", "--port", "abc"],
          "strava-auth login: --port takes a whole number (N); got 'abc'.\nRun `strava-auth login --help` for usage.\n"
        ],
        // found by the command, not the parser: named the same way
        [
          ["login", "--port", "70000"],
          "strava-auth login: --port takes 0-65535; got 70000.\nRun `strava-auth login --help` for usage.\n"
        ],
        [
          ["refresh", "--if-due"],
          "strava-auth refresh: --if-due needs --local.\nRun `strava-auth refresh --help` for usage.\n"
        ]
      ]
      for (const [args, stderr] of cases) {
        const result = yield* run(args, env)
        assert.strictEqual(result.code, 64, args.join(" "))
        assert.strictEqual(result.stdout, "")
        assert.strictEqual(result.stderr, stderr)
      }
    }))
})

describe("progress", () => {
  it.scopedLive(
    "refresh --local against an unreachable Strava shows each attempt, where it went and the next try, on a terminal",
    () =>
      Effect.gen(function*() {
        const { server } = yield* MockServer.make()
        const box = sandbox(server)
        yield* login(box, server)
        // A port nobody listens on: every attempt fails at once, as a transient network failure.
        const closed = yield* Effect.promise(freePort)
        const url = `http://127.0.0.1:${closed}`
        const seen = yield* Effect.promise(() =>
          new Promise<string>((resolve, reject) => {
            const child = spawn(
              "python3",
              [
                "-c",
                "import pty, sys; pty.spawn(sys.argv[1:])",
                process.execPath,
                bin,
                "refresh",
                "--local",
                "--strava-url",
                url
              ],
              { env: { ...box.env, TERM: "xterm" } }
            )
            let output = ""
            const timer = setTimeout(() => {
              child.kill("SIGKILL")
              reject(new Error(`no second attempt shown within 20 s: ${output}`))
            }, 20_000)
            child.stdout.on("data", (chunk: Buffer) => {
              output += chunk.toString("utf8")
              if (output.includes("attempt 2:")) {
                clearTimeout(timer)
                child.kill("SIGTERM")
                resolve(output)
              }
            })
          })
        )
        assert.include(seen, `attempt 1: POST ${url}/oauth/token: Could not reach Strava`)
        assert.match(seen, /trying again in about \d+s/)
        assert.include(seen, `attempt 2: POST ${url}/oauth/token`)
      }),
    30_000
  )
})
