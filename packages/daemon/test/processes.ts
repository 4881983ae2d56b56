// What /proc says about the processes the black-box tests start (Linux).
import * as Fs from "node:fs"

import * as Effect from "effect/Effect"

/** The pids of the refresh helpers (`strava-auth refresh --local --report`) running for `tokenFile`. */
export const helpersOf = (tokenFile: string): Array<number> =>
  Fs.readdirSync("/proc").filter((name) => /^\d+$/.test(name)).flatMap((name) => {
    try {
      const argv = Fs.readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0")
      return argv.includes("refresh") && argv.includes("--local") && argv.includes("--report") &&
          argv.includes(tokenFile)
        ? [Number(name)]
        : []
    } catch {
      return [] // it exited meanwhile
    }
  })

/** The parent pid and the session id of `pid`, or `undefined` when it is gone. */
export const statOf = (pid: number): { readonly ppid: number; readonly session: number } | undefined => {
  try {
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return { ppid: Number(fields[1]), session: Number(fields[3]) }
  } catch {
    return undefined
  }
}

/**
 * When the scope closes (before the harness removes the sandbox), kills any refresh helper still running for
 * `tokenFile`: a detached helper a failed test left behind would otherwise write into a removed directory.
 */
export const killHelpersAtEnd = (tokenFile: string) =>
  Effect.addFinalizer(() =>
    Effect.sync(() => {
      for (const pid of helpersOf(tokenFile)) {
        try {
          process.kill(pid, "SIGKILL")
        } catch {
          // it exited meanwhile
        }
      }
    })
  )
