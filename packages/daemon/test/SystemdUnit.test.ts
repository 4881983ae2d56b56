import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"

import * as SystemdUnit from "../src/SystemdUnit.js"
import { bin, run, tempDir } from "./harness.js"
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
    `systemd-unit --user prints a unit for this installation that systemd-analyze verify accepts${systemdAnalyze.note}`,
    () =>
      Effect.gen(function*() {
        const printed = yield* run(["systemd-unit", "--user"], { PATH: process.env["PATH"] ?? "" })
        assert.strictEqual(printed.code, 0, printed.stderr)
        assert.include(printed.stdout, `ExecStart=${process.execPath} ${bin} daemon\n`)
        assert.include(printed.stdout, "RestartPreventExitStatus=77 78")
        const result = verify(printed.stdout)
        // verify prints nothing and exits 0 for a clean unit; warnings about this unit would be printed
        assert.strictEqual(result.code, 0, result.output)
        assert.notInclude(result.output, "strava-auth.service:")
      })
  )

  it.skipIf(systemdAnalyze.skip)(
    `a system unit for a global npm installation is one systemd-analyze verify accepts${systemdAnalyze.note}`,
    () => {
      const bin = "/usr/local/lib/node_modules/@strava-auth/daemon/bin/strava-auth.js"
      assert.isUndefined(SystemdUnit.systemRefusal(bin, "/usr/bin/node"))
      const result = verify(SystemdUnit.render("system", `/usr/bin/node ${bin}`))
      assert.strictEqual(result.code, 0, result.output)
      assert.notInclude(result.output, "strava-auth.service:")
    }
  )

  it.live("systemd-unit --system from a checkout refuses (78) and says how to install the command", () =>
    Effect.gen(function*() {
      const printed = yield* run(["systemd-unit", "--system"], { PATH: process.env["PATH"] ?? "" })
      assert.strictEqual(printed.code, 78, printed.stderr)
      assert.strictEqual(printed.stdout, "")
      assert.include(printed.stderr, `runs from a checkout (${bin})`)
      assert.include(printed.stderr, "sudo npm install -g ./strava-auth-daemon-<version>.tgz")
    }))

  it("a system unit refuses a command or a node that its sandbox hides, and takes system-wide ones", () => {
    const global = "/usr/local/lib/node_modules/@strava-auth/daemon/bin/strava-auth.js"
    assert.isUndefined(SystemdUnit.systemRefusal(global, "/usr/local/bin/node"))
    assert.isUndefined(
      SystemdUnit.systemRefusal("/opt/tools/lib/node_modules/@strava-auth/daemon/bin/strava-auth.js", "/usr/bin/node")
    )
    const cases: ReadonlyArray<readonly [string, string, string]> = [
      ["/home/ann/strava-auth/packages/daemon/bin/strava-auth.js", "/usr/bin/node", "runs from a checkout"],
      [
        "/home/ann/.npm-global/lib/node_modules/@strava-auth/daemon/bin/strava-auth.js",
        "/usr/bin/node",
        "under /home/"
      ],
      ["/root/lib/node_modules/@strava-auth/daemon/bin/strava-auth.js", "/usr/bin/node", "under /root/"],
      ["/tmp/p/lib/node_modules/@strava-auth/daemon/bin/strava-auth.js", "/usr/bin/node", "under /tmp/"],
      [global, "/home/ann/.nvm/versions/node/v20.19.0/bin/node", "node is at /home/ann/.nvm"]
    ]
    for (const [command, node, reason] of cases) {
      const refusal = SystemdUnit.systemRefusal(command, node)
      assert.isDefined(refusal, command)
      assert.include(refusal, reason)
    }
  })

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
