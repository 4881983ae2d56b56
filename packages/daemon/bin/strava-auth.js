#!/usr/bin/env node
// CommonJS (bin/package.json), which Node starts faster than an ES module: the bundled entry.
// eslint-disable-next-line @typescript-eslint/no-require-imports
require("../dist/strava-auth.cjs")
