#!/usr/bin/env node
// Bundles the `meshvirt` binary's two programs, each into one module in packages/cli/dist:
// agent-bundle.js (what `meshvirt agent` runs, with the fence watchdog's entry beside it:
// fence-watchdog.ts spawns ./watchdog-process.js next to itself) and cli-bundle.js (every other
// command). `npm run build` runs it after tsc; bin.js loads the one the command needs.
//
// Why the CLI: loading ~1,300 modules one by one is most of a command's time. Measured here
// (2 cores): `meshvirt vm ls` 0.95 s as separate modules, 0.36 s from the bundle.
//
// Why the agent: an agent keeps the source of every module it loaded on its heap for its whole life, plus a
// module record, a context and a loader job per module. Loaded one by one, that is ~1,000 modules
// and ~5 MB of source. One bundle, with whitespace and comments gone and the modules the agent
// never imports left out, is ~3 MB of source and one module. Measured on 11 idle agents
// (docs/benchmarks.md, "One module for the agent"): RSS ~92 → ~82 MB each.
//
// Identifiers are kept, so stack traces still name functions; `node --enable-source-maps` maps
// them back to the compiled files through agent-bundle.js.map.
import { build } from 'esbuild'
import { writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const out = join(root, 'packages/cli/dist')
const agentDist = join(root, 'packages/agent/dist')

/**
 * The modules bin.js loads before the bundle (its first imports), by the file tsc compiled them to.
 * The bundle imports these same module instances instead of carrying copies: heap-mode.js holds the
 * process's one HeapMode, and the polyfill need run only once.
 */
const LOADED_BY_BIN = new Map([
  [join(agentDist, 'heap-mode.js'), '@meshvirt/agent/heap-mode'],
  [join(root, 'packages/mesh/dist/polyfill.js'), '@meshvirt/mesh/polyfill']
])

const sharedModules = {
  name: 'shared-modules',
  setup (b) {
    b.onResolve({ filter: /^\.{1,2}\// }, (args) => {
      const specifier = LOADED_BY_BIN.get(join(args.resolveDir, args.path))
      return specifier === undefined ? undefined : { path: specifier, external: true }
    })
  }
}

const result = await build({
  entryPoints: {
    'agent-bundle': join(out, 'agent-main.js'),
    'cli-bundle': join(out, 'main.js'),
    'watchdog-process': join(agentDist, 'fence/watchdog-process.js')
  },
  outdir: out,
  absWorkingDir: root,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // Native addons load their compiled .node files relative to their own package.
  external: ['better-sqlite3'],
  plugins: [sharedModules],
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  sourcemap: true,
  // CommonJS dependencies inside an ES module bundle still call require().
  banner: { js: "import { createRequire as __meshvirtRequire } from 'node:module'; const require = __meshvirtRequire(import.meta.url);" },
  metafile: true,
  logLevel: 'warning'
})

// Our compiled files each bundle was made from: bin.js runs the separate modules instead (with a
// warning) when one of them is newer than the bundle, e.g. after a bare `tsc -b`.
for (const name of ['agent', 'cli']) {
  const output = result.metafile.outputs[relative(root, join(out, `${name}-bundle.js`))]
  if (output === undefined) throw new Error(`esbuild wrote no ${name}-bundle.js`)
  const inputs = Object.keys(output.inputs)
    .map((file) => join(root, file))
    .filter((file) => file.startsWith(join(root, 'packages')) && !file.includes('/node_modules/'))
    .map((file) => relative(out, file))
  writeFileSync(join(out, `${name}-bundle.inputs.json`), JSON.stringify(inputs) + '\n')
}
