// System tools some tests run. On a machine without one, those tests are skipped, with the Debian package to
// install in their name; under CI (CI=true) nothing is skipped, so a missing tool fails the test.
import * as Fs from "node:fs"
import * as Path from "node:path"

const onPath = (tool: string): boolean =>
  (process.env["PATH"] ?? "").split(Path.delimiter).some((dir) => {
    try {
      Fs.accessSync(Path.join(dir || ".", tool), Fs.constants.X_OK)
      return true
    } catch {
      return false
    }
  })

export interface Tool {
  /** The tool is missing and this is not CI: skip the test (`it.live.skipIf(tool.skip)`). */
  readonly skip: boolean
  /** Appended to the test's name: empty, or why it is skipped and what to install. */
  readonly note: string
}

/**
 * `requireTool("chattr", "e2fsprogs")`: whether a test that runs `chattr` can run here.
 *
 * ```ts
 * const chattr = requireTool("chattr", "e2fsprogs")
 * it.live.skipIf(chattr.skip)(`makes the file immutable${chattr.note}`, () => ...)
 * ```
 */
export const requireTool = (tool: string, debianPackage: string): Tool => {
  const skip = !onPath(tool) && process.env["CI"] !== "true"
  const note = skip ? ` [skipped: no ${tool} on PATH; apt-get install ${debianPackage}]` : ""
  // printed when the file is collected, so it shows in the run's output, not only in a verbose report
  if (skip) {
    console.warn(`Skipping the tests that run ${tool}: it is not on PATH (Debian: apt-get install ${debianPackage}).`)
  }
  return { skip, note }
}
