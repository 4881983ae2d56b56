// Shared by `pnpm start` (demo.mjs) and `pnpm bench` (bench.mjs): the mock Strava in its own process, the
// environment that points strava-auth at it, and a login in which this script plays the athlete.
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"

export const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "../..")
export const mockBin = Path.join(root, "packages/testing/bin/strava-mock.js")
export const authBin = Path.join(root, "packages/daemon/bin/strava-auth.js")

export const firstLine = (stream) => new Promise((resolve) => createInterface({ input: stream }).once("line", resolve))
export const exited = (child) =>
  child.exitCode !== null ? Promise.resolve(child.exitCode) : new Promise((resolve) => child.once("exit", resolve))

/** A scratch directory and the processes started in it; `stop()` ends them (SIGTERM) and removes it. */
export const session = (name) => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), `strava-auth-${name}-`))
  const children = []
  return {
    dir,
    socket: Path.join(dir, "run", "token.sock"),
    tokenFile: Path.join(dir, "state", "token.json"),
    start(args, env = {}, options = {}) {
      const child = spawn(process.execPath, args, {
        env: { ...process.env, ...env },
        stdio: ["ignore", "pipe", "pipe"],
        ...options
      })
      children.push(child)
      return child
    },
    async stop() {
      for (const child of children.reverse()) {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill("SIGTERM")
          await exited(child)
        }
      }
      Fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

/**
 * Stops the session once (its processes, then its directory) and exits with `code`; Ctrl-C and SIGTERM do the
 * same with 0, saying `message` first on Ctrl-C. Returns the stop function, and whether stopping has begun.
 */
export const stopOnSignals = (s, message = "Stopping…") => {
  const state = { stopping: false }
  const stop = async (code) => {
    if (state.stopping) return
    state.stopping = true
    await s.stop()
    process.exit(code)
  }
  process.on("SIGINT", () => {
    console.log(`\n${message}`)
    stop(0)
  })
  process.on("SIGTERM", () => stop(0))
  return { stop, state }
}

/** Starts the mock Strava; resolves to its base URL. */
export const startMock = async (s, args = []) => {
  const mock = s.start([mockBin, ...args])
  return firstLine(mock.stdout)
}

/** The environment that points strava-auth at the mock and at the session's files. */
export const envFor = (s, baseUrl, extra = {}) => ({
  STRAVA_CLIENT_ID: "12345",
  STRAVA_CLIENT_SECRET: "mock-client-secret-0123456789abcdef",
  STRAVA_BASE_URL: baseUrl,
  STRAVA_API_URL: `${baseUrl}/api/v3`,
  STRAVA_AUTH_TOKEN_FILE: s.tokenFile,
  STRAVA_AUTH_SOCKET: s.socket,
  ...extra
})

const fetchManual = (url, init) => fetch(url, { redirect: "manual", ...init })

/**
 * `strava-auth login --no-browser`, pressing Authorize on the mock's page. `onLine` gets the login's stderr.
 * Resolves to the title of the page the browser ends on; rejects when the login fails.
 */
export const login = async (s, baseUrl, env, onLine = () => {}) => {
  const child = s.start([authBin, "login", "--no-browser"], env)
  child.stderr.on("data", (d) => onLine(String(d)))
  // the browser's part: the start address login prints on stdout (with this login's key; it is never on stderr
  // or a command line) redirects to Strava and sets the login's cookie
  const startUrl = await firstLine(child.stdout)
  if (!/^http:\/\/127\.0\.0\.1:\d+\/start\?key=[\w-]{43}$/.test(startUrl)) {
    throw new Error("login printed no start address with a key")
  }
  const started = await fetchManual(startUrl)
  if (started.status !== 302) throw new Error(`the start address answered ${started.status}`)
  const authorizeUrl = started.headers.get("location")
  const cookie = (started.headers.get("set-cookie") ?? "").split(";")[0]
  await fetchManual(authorizeUrl)
  const query = new URL(authorizeUrl).searchParams
  const form = new URLSearchParams(query)
  form.set("decision", "authorize")
  for (const scope of (query.get("scope") ?? "").split(",")) form.append("grant", scope)
  const accepted = await fetchManual(`${baseUrl}/oauth/accept`, { method: "POST", body: form })
  const page = await fetchManual(accepted.headers.get("location"), { headers: { cookie } })
  const title = (await page.text()).match(/<h1[^>]*>([^<]*)</)?.[1] ?? String(page.status)
  const code = await exited(child)
  if (code !== 0) throw new Error(`login failed with exit code ${code}`)
  return title
}
