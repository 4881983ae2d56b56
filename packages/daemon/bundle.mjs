// Bundles the `strava-auth` executable (build/ → dist/) with esbuild, tree-shaken and minified:
// - dist/strava-auth.cjs: the entry (main.ts), CommonJS, which Node starts faster than an ES module; it
//   answers `token` with node:net and node:fs alone and loads the full CLI only when it must;
// - dist/cli.js: the full CLI (bin.ts) as one ES module.
// Parsing one bundle instead of hundreds of modules cuts the daemon's start-up and memory (docs/BENCHMARKS.md).
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

import * as esbuild from "esbuild"

const here = Path.dirname(fileURLToPath(import.meta.url))
const outdir = Path.join(here, "dist")
Fs.rmSync(outdir, { recursive: true, force: true })
const common = {
  bundle: true,
  platform: "node",
  target: "node20",
  minify: true,
  sourcemap: true,
  legalComments: "linked",
  logLevel: "warning"
}
await esbuild.build({
  ...common,
  entryPoints: [Path.join(here, "build/main.js")],
  outfile: Path.join(outdir, "strava-auth.cjs"),
  format: "cjs"
})
await esbuild.build({
  ...common,
  entryPoints: [Path.join(here, "build/bin.js")],
  outfile: Path.join(outdir, "cli.js"),
  format: "esm",
  // CommonJS dependencies call require(); give the ESM bundle one.
  banner: {
    js:
      "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);"
  }
})
