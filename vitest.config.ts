import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    projects: ["packages/*"],
    // The JSON report gives CI a plain "N passed, N failed" closing line (see .ci/run).
    reporters: ["default", ["json", { outputFile: "test-artifacts/vitest.json" }]]
  }
})
