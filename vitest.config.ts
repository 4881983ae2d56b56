import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    projects: ["packages/*"],
    // A fresh TMPDIR for the run; the run fails if a test leaves anything in it (runs once, also with
    // --project; the projects' own configs do not set globalSetup).
    globalSetup: ["./scripts/vitest-global-setup.ts"],
    // The JSON report gives CI a plain "N passed, N failed" closing line (see .ci/run).
    reporters: ["default", ["json", { outputFile: "test-artifacts/vitest.json" }]]
  }
})
