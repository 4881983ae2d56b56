// Bundles the `strava-auth` executable (build/ → dist/): one tree-shaken, minified ESM file per entry, with
// the full CLI split into a chunk that `main.js` loads only when the token fast path does not answer.
// Parsing one bundle instead of hundreds of modules cuts the daemon's start-up and memory (docs/BENCHMARKS.md).
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

import * as esbuild from "esbuild"

const here = Path.dirname(fileURLToPath(import.meta.url))
const outdir = Path.join(here, "dist")
Fs.rmSync(outdir, { recursive: true, force: true })
await esbuild.build({
  entryPoints: [Path.join(here, "build/main.js")],
  outdir,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  minify: true,
  sourcemap: true,
  legalComments: "linked",
  // CommonJS dependencies call require(); give the ESM bundle one.
  banner: {
    js:
      "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);"
  },
  logLevel: "warning"
})
