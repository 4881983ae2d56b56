/**
 * The `strava-auth` executable: runs the CLI and maps every failure to its exit code.
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"

import { cli } from "./Cli.js"
import { exitCodeOf } from "./DaemonError.js"
import { usageMessage } from "./Usage.js"

/** The exit code of the failure, decided while its type is known. */
let code = 1

const program = cli(process.argv).pipe(
  Effect.tapErrorCause((cause) =>
    Effect.sync(() => {
      const failure = Cause.failureOption(cause)
      if (Option.isSome(failure)) {
        // Every command's failures are typed as `Failure` where the command is defined (Cli.ts).
        const error = failure.value
        code = exitCodeOf(error)
        // A usage error names its command and where its usage is.
        if (error._tag === "UsageError" && error.command !== undefined) {
          return void process.stderr.write(`${usageMessage(error.command, error.detail)}\n`)
        }
        const message = error instanceof Error ? error.message : String(error)
        process.stderr.write(`strava-auth: ${message}\n`)
      } else if (!Cause.isInterruptedOnly(cause)) {
        process.stderr.write(`strava-auth: unexpected failure:\n${Cause.pretty(cause)}\n`)
      }
    })
  )
)

NodeRuntime.runMain(program, {
  disableErrorReporting: true,
  disablePrettyLogger: true,
  teardown: (exit, onExit) => {
    if (Exit.isSuccess(exit) || Cause.isInterruptedOnly(exit.cause)) return onExit(0)
    onExit(Option.isNone(Cause.failureOption(exit.cause)) ? 1 : code)
  }
})
