/**
 * A real Chromium for browser tests (the daemon's login page, the example web app): `CHROMIUM_PATH` if set;
 * else the Chromium inside `@sparticuz/chromium`, extracted once into `node_modules/.cache/strava-auth-chromium`
 * under the working directory (the temporary directory when there is none; a test run's temp directory must
 * end empty, and a worker thread has no exit event to clean it up); else Debian's `/usr/bin/chromium`. It
 * fails, never skips, when there is none.
 *
 * A separate entry (`@strava-auth/testing/Chromium`): it needs the optional peers `@sparticuz/chromium` and
 * `playwright-core`, which the rest of the package does not.
 *
 * @since 0.3.0
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

import sparticuz from "@sparticuz/chromium"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { type Browser, chromium } from "playwright-core"

// Where sparticuz extracts its binary (it uses `os.tmpdir()`, and skips what is there already).
const cacheDirectory = () => {
  const modules = Path.join(process.cwd(), "node_modules")
  return Fs.existsSync(modules)
    ? Path.join(modules, ".cache", "strava-auth-chromium")
    : Path.join(Os.tmpdir(), "strava-auth-chromium")
}

// sparticuz's flags that weaken the web's security model are left out: this test is about cookies and redirects.
const weakening = ["--disable-web-security", "--allow-running-insecure-content", "--disable-site-isolation-trials"]

const ownFlags = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync"
]

let resolved: Promise<{ readonly executablePath: string; readonly args: ReadonlyArray<string> }> | undefined

const sparticuzBrowser = async () => {
  // Extracted once into a private directory, then renamed into place whole (a rename is atomic): test files
  // running at the same time never see a half-written binary; the loser of the race removes its copy.
  const base = cacheDirectory()
  const ready = Path.join(base, "ready")
  const args = () => [...sparticuz.args.filter((a) => !weakening.includes(a)), ...ownFlags]
  if (Fs.existsSync(Path.join(ready, "chromium"))) return { executablePath: Path.join(ready, "chromium"), args: args() }
  Fs.mkdirSync(base, { recursive: true, mode: 0o700 })
  const mine = Fs.mkdtempSync(Path.join(base, "extracting-"))
  const previous = process.env["TMPDIR"]
  process.env["TMPDIR"] = mine
  try {
    sparticuz.setGraphicsMode = false // no WebGL: nothing to extract but the binary and its fonts
    await sparticuz.executablePath()
  } finally {
    if (previous === undefined) delete process.env["TMPDIR"]
    else process.env["TMPDIR"] = previous
  }
  try {
    Fs.renameSync(mine, ready)
  } catch {
    Fs.rmSync(mine, { recursive: true, force: true }) // another process put its copy in place first
  }
  return { executablePath: Path.join(ready, "chromium"), args: args() }
}

const findBrowser = () =>
  resolved ??= (async () => {
    const fromEnv = process.env["CHROMIUM_PATH"]
    if (fromEnv !== undefined && fromEnv !== "") {
      if (!Fs.existsSync(fromEnv)) throw new Error(`CHROMIUM_PATH is ${fromEnv}, which does not exist`)
      return { executablePath: fromEnv, args: ownFlags }
    }
    try {
      return await sparticuzBrowser()
    } catch (error) {
      if (Fs.existsSync("/usr/bin/chromium")) return { executablePath: "/usr/bin/chromium", args: ownFlags }
      throw new Error(
        `no Chromium: @sparticuz/chromium failed (${String(error)}), /usr/bin/chromium is missing and ` +
          "CHROMIUM_PATH is not set. Run pnpm install, or apt-get install chromium, or set CHROMIUM_PATH."
      )
    }
  })()

/**
 * A headless browser, closed when the scope closes.
 *
 * @since 0.3.0
 * @category browsers
 */
export const launch: Effect.Effect<Browser, never, Scope.Scope> = Effect.acquireRelease(
  Effect.promise(async () => {
    const { args, executablePath } = await findBrowser()
    // Chromium's own temporary files (.org.chromium.Chromium.*) go to a directory of this launch, removed
    // with it, not to the caller's temporary directory, where one written late would be left behind.
    const tmp = Fs.mkdtempSync(Path.join(Os.tmpdir(), "chromium-"))
    const browser = await chromium.launch({
      executablePath,
      headless: true,
      args: [...args],
      env: { ...process.env, TMPDIR: tmp }
    })
    return { browser, tmp }
  }),
  ({ browser, tmp }) =>
    Effect.promise(async () => {
      await browser.close()
      Fs.rmSync(tmp, { recursive: true, force: true })
    })
).pipe(Effect.map(({ browser }) => browser))
