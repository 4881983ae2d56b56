// Mutation testing (`pnpm mutation`): Stryker's default mutators, nothing disabled, over the refresh engine,
// the grant stores, the token source, the error classification, the redirect and authorize URL, and the token
// file with its lock. The score per file and every surviving mutant's reason are in docs/RELIABILITY.md.
// Not part of `pnpm test`: it runs the in-process suites once per mutant and takes a while on 2 cores.
export default {
  packageManager: "pnpm",
  testRunner: "vitest",
  vitest: { configFile: "scripts/vitest.mutation.config.ts" },
  plugins: ["@stryker-mutator/vitest-runner"],
  checkers: [],
  coverageAnalysis: "perTest",
  inPlace: false,
  concurrency: 2,
  timeoutMS: 20000,
  mutate: [
    "packages/core/src/RefreshEngine.ts",
    "packages/core/src/GrantStore.ts",
    "packages/core/src/TokenSource.ts",
    "packages/core/src/StravaError.ts",
    "packages/core/src/Callback.ts",
    "packages/core/src/AuthorizeUrl.ts",
    "packages/daemon/src/TokenFile.ts",
    "packages/daemon/src/FileLock.ts"
  ],
  reporters: ["clear-text", "progress", "json"],
  jsonReporter: { fileName: "test-artifacts/mutation.json" },
  thresholds: { high: 90, low: 80, break: 80 },
  tempDirName: ".stryker-tmp"
}
