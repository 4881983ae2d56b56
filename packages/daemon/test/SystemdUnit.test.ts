import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"

import * as SystemdUnit from "../src/SystemdUnit.js"
import { run, tempDir } from "./harness.js"
import { requireTool } from "./tools.js"

const shipped = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "../systemd")

const systemdAnalyze = requireTool("systemd-analyze", "systemd")

const verify = (unit: string) => {
  const dir = tempDir("unit-")
  const file = Path.join(dir, "strava-auth.service")
  Fs.writeFileSync(file, unit)
  try {
    return { code: 0, output: execFileSync("systemd-analyze", ["verify", file], { encoding: "utf8", stdio: "pipe" }) }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") throw error // no systemd-analyze (under CI)
    const e = error as { status: number; stderr: string; stdout: string }
    return { code: e.status, output: `${e.stdout}${e.stderr}` }
  }
}

describe("systemd units", () => {
  it.live.skipIf(systemdAnalyze.skip)(
    `systemd-unit prints units for this installation that systemd-analyze verify accepts${systemdAnalyze.note}`,
    () =>
      Effect.gen(function*() {
        for (const kind of ["--user", "--system"]) {
          const printed = yield* run(["systemd-unit", kind], { PATH: process.env["PATH"] ?? "" })
          assert.strictEqual(printed.code, 0, printed.stderr)
          assert.include(printed.stdout, `ExecStart=${process.execPath} `)
          assert.include(printed.stdout, "RestartPreventExitStatus=77 78")
          const result = verify(printed.stdout)
          // verify prints nothing and exits 0 for a clean unit; warnings about this unit would be printed
          assert.strictEqual(result.code, 0, result.output)
          assert.notInclude(result.output, "strava-auth.service:")
        }
      })
  )

  it("the shipped unit files are the generic rendering", () => {
    assert.strictEqual(
      Fs.readFileSync(Path.join(shipped, "strava-auth.user.service"), "utf8"),
      SystemdUnit.render("user")
    )
    assert.strictEqual(
      Fs.readFileSync(Path.join(shipped, "strava-auth.system.service"), "utf8"),
      SystemdUnit.render("system")
    )
  })

  it("the system unit has the hardening and the credential", () => {
    const unit = SystemdUnit.render("system")
    for (
      const line of [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "LoadCredential=strava-client-secret:/etc/strava-auth/client-secret",
        "StateDirectory=strava-auth",
        "RuntimeDirectory=strava-auth",
        "Restart=on-failure"
      ]
    ) assert.include(unit, line)
  })
})
