// The suites that run the mutated modules in-process (Stryker's vitest runner measures coverage per test and
// runs only the tests that reach a mutant). The black-box suites run the bundled command, which a mutation of
// the sources does not reach, so they are left out here.
import { defineConfig, mergeConfig } from "vitest/config"

import { shared } from "../vitest.shared.js"

export default mergeConfig(
  shared,
  defineConfig({
    root: new URL("..", import.meta.url).pathname,
    test: {
      include: [
        "packages/core/test/**/*.test.ts",
        "packages/daemon/test/TokenFile.test.ts",
        "packages/daemon/test/GrantFiles.test.ts",
        "packages/daemon/test/FileLock.test.ts",
        "packages/daemon/test/Refresher.test.ts"
      ]
    }
  })
)
