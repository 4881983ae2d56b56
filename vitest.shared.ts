import * as path from "node:path"
import { fileURLToPath } from "node:url"

import type { ViteUserConfig } from "vitest/config"

const root = path.dirname(fileURLToPath(import.meta.url))

// Workspace packages resolve to their sources in tests, so a test never runs against a stale build.
export const shared: ViteUserConfig = {
  resolve: {
    alias: [
      {
        find: /^@strava-auth\/(core|testing|daemon|server)$/,
        replacement: path.join(root, "packages/$1/src/index.ts")
      },
      {
        find: /^@strava-auth\/(core|testing|daemon|server)\/(.*)$/,
        replacement: path.join(root, "packages/$1/src/$2.ts")
      }
    ]
  },
  test: {
    include: ["test/**/*.test.ts"],
    fakeTimers: { toFake: undefined },
    testTimeout: 30_000,
    hookTimeout: 30_000
  }
}
