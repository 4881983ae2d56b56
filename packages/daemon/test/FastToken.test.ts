// The fast path of `strava-auth token` (FastToken, no Effect) beside the full path (TokenFile.read and the
// margin, as `token` runs them): on every file of the fuzz corpus and every hardening case, the fast path
// answers exactly when the full path would print the token without asking Strava, and with the same token.
import { execFileSync, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"

import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { assert, describe, it } from "@effect/vitest"
import { Token } from "@strava-auth/core"
import { MockServer } from "@strava-auth/testing"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"

import * as FastToken from "../src/FastToken.js"
import * as Settings from "../src/Settings.js"
import * as TokenFile from "../src/TokenFile.js"
import { bin, login, run, sandbox, tempDir } from "./harness.js"

const now = 1_900_000_000_000
const margin = 45 * 60 * 1000

const valid = JSON.parse(TokenFile.encode(
  new Token.TokenSet({
    tokenType: "Bearer",
    accessToken: Redacted.make("ACCESS-SECRET-1"),
    refreshToken: Redacted.make("REFRESH-SECRET-2"),
    expiresAt: now / 1000 + 3 * 3600,
    scopes: ["read", "activity:read"],
    athlete: { id: 1, firstname: "Ann", lastname: null }
  }),
  0
)) as Record<string, unknown>

/** What the full path does with the file: the token it would print without a refresh, or `undefined`. */
const fullVerdict = (path: string, marginMillis: number) =>
  Effect.runPromise(
    Effect.either(TokenFile.read(path)).pipe(Effect.provide(NodeFileSystem.layer))
  ).then((result) =>
    result._tag === "Right" && Option.isSome(result.right) &&
      !result.right.value.expiresWithin(Duration.millis(marginMillis), now)
      ? Redacted.value(result.right.value.accessToken)
      : undefined
  )

const fastVerdict = (path: string, marginMillis: number) => {
  const verdict = FastToken.fileVerdict(path, marginMillis, now)
  return verdict._tag === "Answer" ? verdict.token : undefined
}

const sideBySide = async (path: string, what: string, marginMillis = margin) => {
  const full = await fullVerdict(path, marginMillis)
  assert.strictEqual(fastVerdict(path, marginMillis), full, what)
  return full
}

describe("FastToken beside the full path", () => {
  it.live(
    "the fuzz corpus: mutated fields and athletes, torn writes, any string or JSON",
    () =>
      Effect.promise(async () => {
        const dir = tempDir("fast-")
        const file = Path.join(dir, "token.json")
        const athletes = FastCheck.oneof(
          FastCheck.constant(undefined),
          FastCheck.jsonValue(),
          FastCheck.record({ id: FastCheck.oneof(FastCheck.integer(), FastCheck.string()) }),
          FastCheck.dictionary(
            FastCheck.constantFrom("id", "username", "firstname", "lastname", "city", "profile", "extra"),
            FastCheck.oneof(FastCheck.string(), FastCheck.constant(null), FastCheck.integer())
          )
        )
        const mutated = FastCheck.tuple(
          FastCheck.subarray(Object.keys(valid)),
          FastCheck.dictionary(FastCheck.constantFrom(...Object.keys(valid), "extra"), FastCheck.jsonValue()),
          athletes,
          FastCheck.integer({ min: -7200, max: 7 * 3600 })
        ).map(([drop, replace, athlete, left]) => {
          const copy: Record<string, unknown> = { ...valid, expires_at: now / 1000 + left, ...replace }
          if (athlete !== undefined) copy["athlete"] = athlete
          for (const key of drop) delete copy[key]
          return JSON.stringify(copy)
        })
        // Valid files but for the expiry and the athlete (kept, changed, or dropped): both verdicts, often.
        const gentle = FastCheck.tuple(athletes, FastCheck.integer({ min: -7200, max: 7 * 3600 })).map(
          ([athlete, left]) => JSON.stringify({ ...valid, expires_at: now / 1000 + left, athlete })
        )
        const texts = FastCheck.oneof(
          { arbitrary: gentle, weight: 3 },
          { arbitrary: mutated, weight: 4 },
          { arbitrary: mutated.chain((t) => FastCheck.nat(t.length).map((n) => t.slice(0, n))), weight: 1 },
          { arbitrary: FastCheck.string(), weight: 1 },
          { arbitrary: FastCheck.json(), weight: 1 }
        )
        let answered = 0
        await FastCheck.assert(
          FastCheck.asyncProperty(texts, async (text) => {
            Fs.writeFileSync(file, text, { mode: 0o600 })
            if ((await sideBySide(file, text)) !== undefined) answered++
          }),
          { numRuns: 600, seed: 20261202 }
        )
        // The corpus exercises both verdicts (a fixed seed: the same corpus every run).
        assert.isAbove(answered, 30)
      }),
    60_000
  )

  it.live("the hardening cases: links, FIFOs, directories, modes, size, expiry and the margin", () =>
    Effect.promise(async () => {
      const dir = tempDir("fast-")
      const write = (name: string, body: unknown, mode = 0o600) => {
        const path = Path.join(dir, name)
        Fs.writeFileSync(path, typeof body === "string" ? body : JSON.stringify(body), { mode })
        Fs.chmodSync(path, mode)
        return path
      }
      const good = write("good.json", valid)
      assert.strictEqual(await sideBySide(good, "a valid file"), "ACCESS-SECRET-1")
      for (const mode of [0o640, 0o604, 0o660, 0o644, 0o700, 0o400]) {
        await sideBySide(write(`mode-${mode.toString(8)}.json`, valid, mode), `mode ${mode.toString(8)}`)
      }
      const link = Path.join(dir, "link.json")
      Fs.symlinkSync(good, link)
      assert.isUndefined(await sideBySide(link, "a symbolic link"))
      const fifo = Path.join(dir, "fifo.json")
      execFileSync("mkfifo", ["-m", "600", fifo])
      assert.isUndefined(await sideBySide(fifo, "a FIFO"))
      const sub = Path.join(dir, "dir.json")
      Fs.mkdirSync(sub, { mode: 0o700 })
      assert.isUndefined(await sideBySide(sub, "a directory"))
      assert.isUndefined(await sideBySide(Path.join(dir, "missing.json"), "no file"))
      const big = write("big.json", JSON.stringify({ ...valid, padding: "x".repeat(70 * 1024) }))
      assert.isUndefined(await sideBySide(big, "more than 64 KiB"))
      const fits = write("fits.json", JSON.stringify({ ...valid, padding: "x".repeat(60 * 1024) }))
      assert.strictEqual(await sideBySide(fits, "under 64 KiB, extra fields"), "ACCESS-SECRET-1")
      for (const left of [-60, 0, 45 * 60, 45 * 60 + 1, 3600, 6 * 3600]) {
        await sideBySide(write(`left-${left}.json`, { ...valid, expires_at: now / 1000 + left }), `${left} s left`)
      }
      for (const m of [1000, 2 * 3600 * 1000, 6 * 3600 * 1000]) await sideBySide(good, `margin ${m}`, m)
      for (const version of [0, 2, "1", null]) {
        await sideBySide(write(`version-${String(version)}.json`, { ...valid, version }), `version ${String(version)}`)
      }
    }))

  it("margins: the fast path takes a plain one the full path reads the same, and defers on anything else", () => {
    const cases = [
      undefined,
      "",
      "  ",
      "45m",
      "90s",
      "1h",
      "6h",
      "360m",
      "361m",
      "7h",
      "0s",
      "0m",
      "45 minutes",
      "1h30m",
      "45",
      "-5m",
      "45M",
      " 45m",
      "1.5h",
      "99999999h"
    ]
    for (const text of cases) {
      const fast = FastToken.marginOf(text)
      if (fast === undefined) continue
      if (text === undefined || text.trim() === "") {
        assert.strictEqual(fast, 45 * 60 * 1000)
        continue
      }
      const full = Settings.parseDuration(text)
      assert.isTrue(Option.isSome(full), text)
      assert.strictEqual(Duration.toMillis(Option.getOrThrow(full)), fast, text)
      assert.isAtMost(fast, 6 * 3600 * 1000)
      assert.isAbove(fast, 0)
    }
    assert.isUndefined(FastToken.marginOf("7h"))
    assert.isUndefined(FastToken.marginOf("0s"))
    assert.isUndefined(FastToken.marginOf("45 minutes"))
  })
})

describe("strava-auth token without a daemon", () => {
  it.scopedLive(
    "answers from the file without loading the CLI, and loads it when a refresh is due",
    () =>
      Effect.gen(function*() {
        const { server } = yield* MockServer.make()
        const box = sandbox(server)
        yield* login(box, server)
        const token = JSON.parse(Fs.readFileSync(box.tokenFile, "utf8")).access_token as string
        // The command with its bundle, minus the full CLI: only the fast path can answer.
        const copy = tempDir("cmd-")
        const root = Path.resolve(Path.dirname(bin), "..")
        for (const part of ["bin", "dist"]) Fs.cpSync(Path.join(root, part), Path.join(copy, part), { recursive: true })
        Fs.copyFileSync(Path.join(root, "package.json"), Path.join(copy, "package.json"))
        for (const file of Fs.readdirSync(Path.join(copy, "dist"))) {
          if (file.startsWith("cli.")) Fs.rmSync(Path.join(copy, "dist", file))
        }
        const withoutCli = (env: Record<string, string>) =>
          Effect.promise(() =>
            new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
              let stdout = ""
              let stderr = ""
              const child = spawn(process.execPath, [Path.join(copy, "bin", "strava-auth.js"), "token"], { env })
              child.stdout.on("data", (d: Buffer) => (stdout += d))
              child.stderr.on("data", (d: Buffer) => (stderr += d))
              child.on("exit", (code: number | null) => resolve({ code, stdout, stderr }))
            })
          )
        const fast = yield* withoutCli(box.env)
        assert.strictEqual(fast.code, 0, fast.stderr)
        assert.strictEqual(fast.stdout, `${token}\n`)
        // Within the margin: the fast path defers, and without the CLI there is nothing to defer to.
        const due = yield* withoutCli({ ...box.env, STRAVA_AUTH_REFRESH_MARGIN: "6h" })
        assert.notStrictEqual(due.code, 0)
        assert.include(due.stderr, "cli.js")
        // The real command, either way: the same token from the file, and a refresh when due.
        assert.strictEqual((yield* run(["token"], box.env)).stdout, `${token}\n`)
        const refreshed = yield* run(["token"], { ...box.env, STRAVA_AUTH_REFRESH_MARGIN: "6h" })
        assert.strictEqual(refreshed.code, 0, refreshed.stderr)
      }),
    30_000
  )
})
