#!/usr/bin/env node
// `pnpm bench`: strava-auth measured side by side with its baselines, in one run, in alternating rounds,
// reporting medians (see ../shared BENCHMARKING.md). Writes docs/BENCHMARKS.md. Not part of the test suite.
//
// 1. GET /token on the daemon's socket vs a bare node:http Unix-socket server (1 and 64 keep-alive
//    connections; req/s, p50, p99), with one cheap raw-HTTP client for both.
// 2. `strava-auth token` (daemon up, then from the file) vs `node -e 0` and `cat token.json`, in a minimal
//    environment and in the machine's own.
// 3. RSS after start and after load, and idle CPU and wake-ups over 60 s, vs the bare server.
// 4. Start to socket ready, vs the bare server.
// 5. Exchange and refresh through StravaOAuth vs the same request with plain fetch, against the mock server.
import { execFileSync, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { parseArgs } from "node:util"

import { authBin, envFor, exited, login, root, session, startMock } from "./lib/session.mjs"

const { values } = parseArgs({ options: { quick: { type: "boolean" } } })
const quick = values.quick === true
const ROUNDS = quick ? 2 : 3
const LOAD_SECONDS = quick ? 1 : 3
const IDLE_SECONDS = quick ? 5 : 60
const RUNS = quick ? 5 : 30

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const procStatus = (pid, key) => {
  const line = Fs.readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith(`${key}:`))
  return Number(line?.split(/\s+/)[1] ?? NaN)
}
const cpuTicks = (pid) => {
  const fields = Fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ")
  return Number(fields[11]) + Number(fields[12]) // utime + stime (fields 14 and 15 of stat)
}
const ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100

const waitForSocket = async (socket, deadlineMs = 20_000) => {
  const until = Date.now() + deadlineMs
  for (;;) {
    const ok = await new Promise((resolve) => {
      const req = Http.request({ socketPath: socket, path: "/token", headers: { host: "x" } }, (res) => {
        res.resume()
        res.on("end", () => resolve(res.statusCode === 200))
      })
      req.on("error", () => resolve(false))
      req.end()
    })
    if (ok) return
    if (Date.now() > until) throw new Error(`nothing answered on ${socket}`)
    await sleep(2)
  }
}

/** Raw keep-alive HTTP/1.1 load: `connections` clients, each one request at a time, for `seconds`. */
const load = (socket, connections, seconds) =>
  new Promise((resolve) => {
    const request = Buffer.from("GET /token HTTP/1.1\r\nhost: localhost\r\n\r\n")
    const latencies = []
    let done = 0
    const end = performance.now() + seconds * 1000
    for (let c = 0; c < connections; c++) {
      const conn = Net.connect({ path: socket })
      let sent = 0
      let buffer = ""
      const send = () => {
        sent = performance.now()
        conn.write(request)
      }
      conn.on("connect", send)
      conn.on("data", (chunk) => {
        buffer += chunk.toString("latin1")
        for (;;) {
          const head = buffer.indexOf("\r\n\r\n")
          if (head < 0) return
          const length = Number(/content-length: (\d+)/i.exec(buffer.slice(0, head))?.[1] ?? 0)
          if (buffer.length < head + 4 + length) return
          buffer = buffer.slice(head + 4 + length)
          latencies.push(performance.now() - sent)
          if (performance.now() < end) send()
          else {
            conn.end()
            if (++done === connections) {
              const sorted = latencies.sort((a, b) => a - b)
              resolve({ rps: sorted.length / seconds, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) })
            }
            return
          }
        }
      })
    }
  })

const rows = []
const row = (what, ours, baseline, ratio, target, met) => rows.push({ what, ours, baseline, ratio, target, met })
const fmt = (n, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a")

const s = session("bench")
try {
  const baseUrl = await startMock(s)
  const env = envFor(s, baseUrl)
  await login(s, baseUrl, env)
  const bareSocket = Path.join(s.dir, "bare.sock")
  const bareScript = Path.join(root, "scripts/lib/bare-server.mjs")

  // 4 and 3 (after start): start to ready, alternating, medians; RSS once idle.
  const startup = { ours: [], bare: [], oursRss: [], bareRss: [] }
  for (let round = 0; round < ROUNDS; round++) {
    for (const side of ["ours", "bare"]) {
      const t0 = performance.now()
      const child = side === "ours"
        ? s.start([authBin, "daemon"], env)
        : s.start([bareScript, bareSocket])
      await waitForSocket(side === "ours" ? s.socket : bareSocket)
      startup[side].push(performance.now() - t0)
      await sleep(500)
      startup[`${side}Rss`].push(procStatus(child.pid, "VmRSS") / 1024)
      child.kill("SIGTERM")
      await exited(child)
    }
  }
  console.error(`start to ready: ours ${fmt(median(startup.ours))} ms, bare ${fmt(median(startup.bare))} ms`)

  // Long-lived servers for load, RSS after load and idle.
  const daemon = s.start([authBin, "daemon"], env)
  const bare = s.start([bareScript, bareSocket])
  await waitForSocket(s.socket)
  await waitForSocket(bareSocket)

  // 1. Load, alternating rounds.
  const loads = {}
  for (const connections of [1, 64]) {
    loads[connections] = { ours: [], bare: [] }
    await load(s.socket, connections, 0.5) // warm-up
    await load(bareSocket, connections, 0.5)
    for (let round = 0; round < ROUNDS; round++) {
      loads[connections].ours.push(await load(s.socket, connections, LOAD_SECONDS))
      loads[connections].bare.push(await load(bareSocket, connections, LOAD_SECONDS))
    }
  }
  const rssAfterLoad = { ours: procStatus(daemon.pid, "VmRSS") / 1024, bare: procStatus(bare.pid, "VmRSS") / 1024 }

  // 3. Idle: CPU ticks and context switches of both over the same window.
  const before = {
    ours: [cpuTicks(daemon.pid), procStatus(daemon.pid, "voluntary_ctxt_switches")],
    bare: [cpuTicks(bare.pid), procStatus(bare.pid, "voluntary_ctxt_switches")]
  }
  await sleep(IDLE_SECONDS * 1000)
  const idle = {}
  for (const [side, pid] of [["ours", daemon.pid], ["bare", bare.pid]]) {
    idle[side] = {
      cpuMs: ((cpuTicks(pid) - before[side][0]) * 1000) / ticksPerSecond,
      wakeups: procStatus(pid, "voluntary_ctxt_switches") - before[side][1]
    }
  }

  // 2. `strava-auth token` vs node -e 0 vs cat, alternating, in two environments: a minimal one (PATH, HOME and
  //    the session's paths) and this machine's own (which may carry NODE_EXTRA_CA_CERTS and the like: it
  //    costs both sides alike).
  const environments = {
    minimal: {
      PATH: process.env.PATH,
      HOME: env.HOME ?? process.env.HOME,
      STRAVA_AUTH_SOCKET: env.STRAVA_AUTH_SOCKET,
      STRAVA_AUTH_TOKEN_FILE: env.STRAVA_AUTH_TOKEN_FILE
    },
    machine: { ...process.env, ...env }
  }
  const timeCommands = (environment) => {
    const timing = { token: [], node: [], cat: [] }
    const commands = {
      token: [process.execPath, [authBin, "token"]],
      node: [process.execPath, ["-e", "0"]],
      cat: ["cat", [s.tokenFile]]
    }
    for (let i = 0; i < RUNS; i++) {
      for (const [name, [cmd, args]] of Object.entries(commands)) {
        const t0 = performance.now()
        const result = spawnSync(cmd, args, { env: environment, stdio: ["ignore", "pipe", "pipe"] })
        timing[name].push(performance.now() - t0)
        if (result.status !== 0) throw new Error(`${name} failed: ${result.stderr}`)
      }
    }
    return timing
  }
  const timingUp = { minimal: timeCommands(environments.minimal), machine: timeCommands(environments.machine) }

  daemon.kill("SIGTERM")
  bare.kill("SIGTERM")
  await Promise.all([exited(daemon), exited(bare)])

  // 2b. The same with no daemon: `token` reads the token file (hours left), without a refresh.
  const timingFile = { minimal: timeCommands(environments.minimal), machine: timeCommands(environments.machine) }

  // 5. StravaOAuth vs fetch, in-process against a mock server.
  const oauthBench = await import("./lib/oauth-bench.mjs")
  const oauth = await oauthBench.run(quick ? 50 : 200)

  // 6. The web app package: the example app's GET /athletes/:id vs the mock's API with a known token, and
  //    Athletes.tokenFor on a warm grant vs the primary-key SELECT it starts with.
  const webBench = await import("./lib/web-bench.mjs")
  const web = await webBench.run(s, quick ? 50 : 200)

  for (const connections of [1, 64]) {
    const o = loads[connections].ours
    const b = loads[connections].bare
    const ratio = median(o.map((x) => x.rps)) / median(b.map((x) => x.rps))
    const p99 = median(o.map((x) => x.p99))
    row(
      `GET /token, ${connections} connection${connections > 1 ? "s" : ""}: req/s (p50 / p99 ms)`,
      `${fmt(median(o.map((x) => x.rps)), 0)} (${fmt(median(o.map((x) => x.p50)), 2)} / ${fmt(p99, 2)})`,
      `${fmt(median(b.map((x) => x.rps)), 0)} (${fmt(median(b.map((x) => x.p50)), 2)} / ${
        fmt(median(b.map((x) => x.p99)), 2)
      })`,
      `${fmt(ratio, 2)}×`,
      connections === 64 ? "≥ 0.9×, p99 ≤ 3 ms" : "report",
      connections === 64 ? (ratio >= 0.9 && p99 <= 3 ? "yes" : "no") : "-"
    )
  }
  for (
    const [label, timings, target] of [["daemon up", timingUp, 1.3], ["no daemon, from the file", timingFile, 1.5]]
  ) {
    for (const name of ["minimal", "machine"]) {
      const timing = timings[name]
      const ratio = median(timing.token) / median(timing.node)
      row(
        `\`strava-auth token\` wall time, ${label}, ${
          name === "minimal" ? "minimal environment" : "this machine's environment"
        } (ms)`,
        fmt(median(timing.token)),
        `node -e 0: ${fmt(median(timing.node))}; cat: ${fmt(median(timing.cat))}`,
        `${fmt(ratio, 2)}× node`,
        `≤ ${target}× node`,
        ratio <= target ? "yes" : "no"
      )
    }
  }
  const rssRatio = median(startup.oursRss) / median(startup.bareRss)
  row(
    "RSS after start (MB)",
    fmt(median(startup.oursRss)),
    fmt(median(startup.bareRss)),
    `${fmt(rssRatio, 2)}×`,
    "≤ 1.3×",
    rssRatio <= 1.3 ? "yes" : "no"
  )
  const loadRatio = rssAfterLoad.ours / rssAfterLoad.bare
  row(
    "RSS after load (MB)",
    fmt(rssAfterLoad.ours),
    fmt(rssAfterLoad.bare),
    `${fmt(loadRatio, 2)}×`,
    "≤ 1.3×",
    loadRatio <= 1.3 ? "yes" : "no"
  )
  row(
    `idle over ${IDLE_SECONDS} s: CPU ms, wake-ups`,
    `${fmt(idle.ours.cpuMs, 0)} ms, ${idle.ours.wakeups}`,
    `${fmt(idle.bare.cpuMs, 0)} ms, ${idle.bare.wakeups}`,
    "-",
    "≈ 0 (nothing faster than the 30 s re-check)",
    idle.ours.cpuMs <= 50 ? "yes" : "no"
  )
  row(
    "start to socket ready (ms)",
    fmt(median(startup.ours)),
    fmt(median(startup.bare)),
    `${fmt(median(startup.ours) / median(startup.bare), 2)}×`,
    "≤ 3×",
    median(startup.ours) / median(startup.bare) <= 3 ? "yes" : "no"
  )
  for (const op of ["exchange", "refresh"]) {
    const ratio = oauth[op].ours / oauth[op].fetch
    row(
      `${op} through StravaOAuth vs fetch (median ms per call)`,
      fmt(oauth[op].ours, 3),
      fmt(oauth[op].fetch, 3),
      `${fmt(ratio, 2)}×`,
      "≤ 1.3×",
      ratio <= 1.3 ? "yes" : "no"
    )
  }
  const webRatio = web.athlete.app / web.athlete.direct
  row(
    "`GET /athletes/:id` through the example app vs the mock's `GET /athlete` with a known token, mock answering at once (median ms)",
    fmt(web.athlete.app, 3),
    fmt(web.athlete.direct, 3),
    `${fmt(webRatio, 2)}×`,
    "≤ 1.2×",
    webRatio <= 1.2 ? "yes" : "no"
  )
  const slowRatio = web.athleteAtStravaLatency.app / web.athleteAtStravaLatency.direct
  row(
    "the same, the mock answering after 100 ms as Strava does (median ms)",
    fmt(web.athleteAtStravaLatency.app, 1),
    fmt(web.athleteAtStravaLatency.direct, 1),
    `${fmt(slowRatio, 2)}×`,
    "≤ 1.2×",
    slowRatio <= 1.2 ? "yes" : "no"
  )
  row(
    "`Athletes.tokenFor` on a warm grant, per replica, 16 callers: calls/s (vs its primary-key SELECT alone)",
    fmt(web.tokenFor.ours, 0),
    fmt(web.tokenFor.select, 0),
    `${fmt(web.tokenFor.ours / web.tokenFor.select, 2)}×`,
    "report",
    "-"
  )
} finally {
  await s.stop()
}

const cpu = Os.cpus()[0]?.model ?? "unknown CPU"
const machine =
  `${Os.cpus().length} cores (${cpu}), ${fmt(Os.totalmem() / 2 ** 30, 0)} GiB, Node ${process.version}, ` +
  `${Os.type()} ${Os.release()}; NODE_EXTRA_CA_CERTS ${
    process.env.NODE_EXTRA_CA_CERTS ? "set" : "unset"
  } for both sides`
const table = [
  "| what | strava-auth | baseline | ratio | target | met |",
  "|---|---|---|---|---|---|",
  ...rows.map((r) => `| ${r.what} | ${r.ours} | ${r.baseline} | ${r.ratio} | ${r.target} | ${r.met} |`)
].join("\n")
console.log(`\n${table}\n\n${machine}${quick ? " (quick run)" : ""}`)
if (!quick) {
  const doc = Path.join(root, "docs/BENCHMARKS.md")
  const old = Fs.existsSync(doc) ? Fs.readFileSync(doc, "utf8") : ""
  const notes = old.includes("## Notes") ? old.slice(old.indexOf("## Notes")) : "## Notes\n"
  Fs.writeFileSync(
    doc,
    `# Benchmarks\n\nProduced by \`pnpm bench\` on ${new Date().toISOString().slice(0, 10)}: ${machine}. Each figure ` +
      `sits beside its baseline, measured in the same run in alternating rounds (${ROUNDS} rounds, medians; load ` +
      `${LOAD_SECONDS} s per round with one raw keep-alive HTTP/1.1 client for both sides; ${RUNS} runs of each ` +
      `command).\n\n${table}\n\n${notes}`
  )
  console.error(`wrote ${doc}`)
}
