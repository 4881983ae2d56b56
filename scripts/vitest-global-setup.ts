// One temp directory per test run (vitest `globalSetup`, in the root config: it runs once, in the main
// process, before any worker starts, and also for `--project <name>`).
//
// `TMPDIR` points at a fresh 0700 directory, so `os.tmpdir()` in every worker, and in every child process
// that inherits the environment, resolves there and nothing a test creates lands in the real /tmp. At the
// end the directory must be empty: every test removes what it creates, also when it fails. Anything left
// is listed and fails the run (exit code 1); the directory is removed either way.
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

/** Paths under `dir`, relative to it (directories with their contents, up to a few levels). */
const listing = (dir: string, depth = 3): Array<string> =>
  Fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = Path.join(dir, entry.name)
    const below = entry.isDirectory() && depth > 1 ? listing(full, depth - 1) : []
    return [entry.name + (entry.isDirectory() ? "/" : ""), ...below.map((p) => Path.join(entry.name, p))]
  })

export default function setup() {
  const previous = process.env["TMPDIR"]
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "strava-auth-vitest-"))
  Fs.chmodSync(dir, 0o700)
  process.env["TMPDIR"] = dir

  return () => {
    if (previous === undefined) delete process.env["TMPDIR"]
    else process.env["TMPDIR"] = previous
    const left = listing(dir)
    if (left.length > 0) {
      process.exitCode = 1
      console.error(
        `\nThe tests left ${left.length} path(s) in their temp directory ${dir} ` +
          `(every test must remove what it creates, also when it fails):\n` +
          left.map((p) => `  ${p}`).join("\n") + "\n"
      )
    }
    try {
      Fs.rmSync(dir, { recursive: true, force: true })
    } catch (error) {
      process.exitCode = 1
      console.error(`\nCould not remove the tests' temp directory ${dir}: ${String(error)}\n`)
    }
  }
}
