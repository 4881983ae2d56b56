// Black-box harness: the real `strava-auth` process against the mock Strava server on 127.0.0.1.
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

import { onTestFinished } from "@effect/vitest"
import type { MockServer } from "@strava-auth/testing"
import { Simulator } from "@strava-auth/testing"
import * as Effect from "effect/Effect"

import * as SocketClient from "../src/SocketClient.js"

export const bin = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "../bin/strava-auth.js")

/** Everything any child printed on stderr (logs and messages), for the secret scan. */
export const transcript: Array<string> = []

export interface Sandbox {
  readonly dir: string
  readonly tokenFile: string
  readonly socket: string
  readonly env: Record<string, string>
  /** The command to run instead of the workspace's `bin/strava-auth.js` (an installed one), run as it is. */
  readonly command?: string
}

const remove = (dir: string) => {
  try {
    Fs.rmSync(dir, { recursive: true, force: true })
  } catch (error) {
    // a file the test made immutable (`chattr +i`) and did not reset because it failed first
    if ((error as NodeJS.ErrnoException).code !== "EPERM") throw error
    execFileSync("chattr", ["-R", "-i", dir], { stdio: "ignore" })
    Fs.rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * A fresh directory under the run's temp dir (`os.tmpdir()`, see scripts/vitest-global-setup.ts), removed with
 * everything in it when the current test ends, whether it passed or failed. Call it inside a test.
 */
export const tempDir = (prefix: string): string => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), prefix))
  onTestFinished(() => remove(dir))
  return dir
}

/** A sandbox for one strava-auth installation; removed when the current test ends (call it inside a test). */
export const sandbox = (server: MockServer.MockServerShape, extra: Record<string, string> = {}): Sandbox => {
  const dir = tempDir("sa-")
  const tokenFile = Path.join(dir, "state", "token.json")
  const socket = Path.join(dir, "run", "token.sock")
  const env: Record<string, string> = {
    PATH: process.env["PATH"] ?? "/usr/bin:/bin",
    HOME: dir,
    TMPDIR: Os.tmpdir(), // the run's temp dir, for the children too
    STRAVA_CLIENT_ID: Simulator.defaultApp.clientId,
    STRAVA_CLIENT_SECRET: Simulator.defaultApp.clientSecret,
    STRAVA_BASE_URL: server.url,
    STRAVA_API_URL: server.apiUrl,
    STRAVA_AUTH_TOKEN_FILE: tokenFile,
    STRAVA_AUTH_SOCKET: socket,
    ...extra
  }
  return { dir, tokenFile, socket, env }
}

export interface Result {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

export const start = (
  args: ReadonlyArray<string>,
  env: Record<string, string>,
  options: { readonly command?: string | undefined; readonly cwd?: string | undefined } = {}
): ChildProcess => {
  const child = options.command === undefined
    ? spawn(process.execPath, [bin, ...args], { env, cwd: options.cwd, stdio: ["pipe", "pipe", "pipe"] })
    : spawn(options.command, args, { env, cwd: options.cwd, stdio: ["pipe", "pipe", "pipe"] })
  child.stdout!.setEncoding("utf8")
  child.stderr!.setEncoding("utf8")
  child.stderr!.on("data", (d: string) => transcript.push(d))
  // One the test left running (it failed or timed out first) is killed before its sandbox is removed.
  onTestFinished(() =>
    child.exitCode !== null || child.signalCode !== null ? undefined : new Promise<void>((resolve) => {
      child.once("exit", () => resolve())
      child.kill("SIGKILL")
    })
  )
  return child
}

export const collect = (child: ChildProcess): Promise<Result> =>
  new Promise((resolve) => {
    let stdout = ""
    let stderr = ""
    child.stdout!.on("data", (d: string) => (stdout += d))
    child.stderr!.on("data", (d: string) => (stderr += d))
    child.once("exit", (code) => resolve({ code, stdout, stderr }))
  })

/** Runs the command to completion. */
export const run = (args: ReadonlyArray<string>, env: Record<string, string>, stdin?: string) =>
  Effect.promise(() => {
    const child = start(args, env)
    const done = collect(child)
    if (stdin !== undefined) child.stdin!.end(stdin)
    else child.stdin!.end()
    return done
  })

/** Polls `check` until it returns a value, or fails after `millis`. */
export const eventually = <A>(check: () => Promise<A | undefined>, millis = 15_000, what = "condition") =>
  Effect.promise(async () => {
    const until = Date.now() + millis
    for (;;) {
      const value = await check()
      if (value !== undefined) return value
      if (Date.now() > until) throw new Error(`timed out after ${millis} ms waiting for ${what}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  })

export const socketGet = (socket: string, path: string, method: "GET" | "POST" = "GET") =>
  Effect.runPromise(SocketClient.request(socket, method, path, 10_000))

/** Starts the daemon and waits for its socket; stopped (SIGTERM) when the scope closes. */
export const daemon = (box: Sandbox, args: ReadonlyArray<string> = []) =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      const child = start(["daemon", ...args], box.env, { command: box.command, cwd: box.command && box.dir })
      const result = collect(child)
      yield* eventually(
        async () => {
          if (child.exitCode !== null) throw new Error(`daemon exited: ${(await result).stderr}`)
          const reply = await socketGet(box.socket, "/health")
          return reply._tag === "Reply" ? true : undefined
        },
        15_000,
        "the daemon's socket"
      )
      return { child, result }
    }),
    ({ child }) =>
      Effect.promise(() =>
        child.exitCode !== null ? Promise.resolve() : new Promise<void>((resolve) => {
          child.once("exit", () => resolve())
          child.kill("SIGTERM")
        })
      )
  )

/** The start address `login` prints on stdout: `/start` with this login's key (32 random bytes, base64url). */
export const startAddress = /^http:\/\/127\.0\.0\.1:(\d+)\/start\?key=([A-Za-z0-9_-]{43})$/

/** The key in a start address (to look for it where it must not be: argv, stderr). */
export const keyOf = (start: string): string => {
  const match = start.match(startAddress)
  if (match === null) throw new Error(`not a start address with a key: ${start}`)
  return match[2]!
}

/**
 * A fake `xdg-open` first on PATH (run `login` with `{ PATH: `${bin}:...`, DISPLAY: ":99" }` so it uses it):
 * records its argv, one argument a line, in `argvFile`.
 */
export const fakeOpener = (dir: string) => {
  const bin = Path.join(dir, "bin")
  Fs.mkdirSync(bin)
  const argvFile = Path.join(dir, "opener-argv")
  Fs.writeFileSync(
    Path.join(bin, "xdg-open"),
    `#!/bin/sh\nprintf '%s\\n' "$@" > '${argvFile}.tmp' && mv '${argvFile}.tmp' '${argvFile}'\n`,
    { mode: 0o755 }
  )
  return { bin, argvFile }
}

/**
 * What a browser does with the login's start address (with its key): one visit, not following the redirect;
 * gives Strava's authorize URL (the `Location`) and the cookie to send back with the redirect (`name=value`).
 */
export const visitStart = async (start: string) => {
  const reply = await fetch(start, { redirect: "manual" })
  const location = reply.headers.get("location")
  const cookie = reply.headers.get("set-cookie")?.split(";")[0]
  if (reply.status !== 302 || location === null || cookie === undefined) {
    throw new Error(`the login's start address answered ${reply.status} without a redirect and a cookie`)
  }
  return { authorizeUrl: location, cookie, setCookie: reply.headers.get("set-cookie")! }
}

/** The athlete's decision on the mock's page for `authorizeUrl`; gives Strava's redirect (the callback URL). */
export const decide = async (
  server: MockServer.MockServerShape,
  authorizeUrl: string,
  decision: {
    readonly approve?: boolean
    readonly grant?: ReadonlyArray<string>
    /** The athlete who signs in on the page (the mock's first by default). */
    readonly athleteId?: number
  } = {}
) => {
  const query = new URL(authorizeUrl).searchParams
  const form = new URLSearchParams(query)
  form.set("decision", decision.approve === false ? "cancel" : "authorize")
  if (decision.athleteId !== undefined) form.set("athlete_id", String(decision.athleteId))
  for (const scope of decision.grant ?? (query.get("scope") ?? "").split(",")) form.append("grant", scope)
  const accepted = await fetch(`${server.url}/oauth/accept`, { method: "POST", body: form, redirect: "manual" })
  return accepted.headers.get("location")!
}

/** The first line `child` prints on stdout. */
export const firstLine = (child: ChildProcess) =>
  new Promise<string>((resolve, reject) => {
    let buffer = ""
    child.stdout!.on("data", (d: string) => {
      buffer += d
      if (buffer.includes("\n")) resolve(buffer.split("\n")[0]!)
    })
    child.once("exit", () => reject(new Error("login exited before printing its address")))
  })

/**
 * `strava-auth login --no-browser`, the way a browser runs it: visits the start address it prints on stdout
 * (`start`, with the login's key),
 * which redirects to Strava's authorize URL (`url`) and sets a cookie; the athlete decides on the mock's page;
 * the browser follows Strava's redirect (`location`) with the cookie.
 */
export const login = (
  box: Sandbox,
  server: MockServer.MockServerShape,
  decision: {
    readonly approve?: boolean
    readonly grant?: ReadonlyArray<string>
    readonly args?: ReadonlyArray<string>
    readonly athleteId?: number
  } = {}
) =>
  Effect.promise(async () => {
    const child = start(["login", "--no-browser", ...(decision.args ?? [])], box.env, {
      command: box.command,
      cwd: box.command && box.dir
    })
    const result = collect(child)
    child.stdin!.end()
    const startUrl = await firstLine(child)
    keyOf(startUrl)
    const { authorizeUrl, cookie } = await visitStart(startUrl)
    const location = await decide(server, authorizeUrl, decision)
    const page = await fetch(location, { redirect: "manual", headers: { cookie } })
    return {
      start: startUrl,
      url: authorizeUrl,
      location,
      page: { status: page.status, text: await page.text() },
      result: await result
    }
  })

/** A callback that answers Strava's challenge when the verify token matches (or always fails with `status`). */
export const callbackServer = (verifyToken: string, status?: number) =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<{ readonly url: string; readonly server: Http.Server }>((resolve) => {
        const server = Http.createServer((req, res) => {
          const query = new URL(req.url ?? "/", "http://x").searchParams
          if (status !== undefined || query.get("hub.verify_token") !== verifyToken) {
            res.writeHead(status ?? 403).end()
            return
          }
          res.writeHead(200, { "content-type": "application/json" })
          res.end(JSON.stringify({ "hub.challenge": query.get("hub.challenge") }))
        })
        server.listen(0, "127.0.0.1", () => {
          const address = server.address() as { port: number }
          resolve({ url: `http://127.0.0.1:${address.port}/strava/webhook`, server })
        })
      })
    ),
    ({ server }) => Effect.promise(() => new Promise<void>((resolve) => server.close(() => resolve())))
  )

/** A port on 127.0.0.1 that nothing listens on (it was free a moment ago). */
export const freePort = () =>
  new Promise<number>((resolve) => {
    const probe = Net.createServer()
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as Net.AddressInfo
      probe.close(() => resolve(port))
    })
  })
