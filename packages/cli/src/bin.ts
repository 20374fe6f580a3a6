#!/usr/bin/env node
// Two small modules first, then the CLI: the heap setting must precede the loading of the
// program (loading ~1,300 modules one by one is what grew the young generation), and libp2p 3
// needs Promise.withResolvers on Node 20.
import '@meshvirt/agent/process-heap'
import '@meshvirt/agent/polyfill'
import { bundleStaleness } from './bundle-check.js'

// Each program runs from its bundle, one module made by `npm run build` (scripts/bundle.mjs):
// `meshvirt agent` only what the agent runs, every other command the CLI.
const { main } = process.argv[2] === 'agent' ? await loadAgent() : await loadCli()
main(process.argv.slice(2), {
  env: process.env,
  out: (text) => { process.stdout.write(text + '\n') },
  err: (text) => { process.stderr.write(text + '\n') }
}).then((code) => { process.exitCode = code }, (err: unknown) => {
  process.stderr.write(`meshvirt: unexpected failure: ${String(err)}\n`)
  process.exitCode = 1
})

/**
 * The agent's bundle, or its separate modules when the bundle is missing or older than one of the
 * compiled files it was made from (a bare `tsc -b` after a change): the agent then runs the code as
 * compiled, with the memory of ~1,000 modules, and says so.
 */
async function loadAgent (): Promise<typeof import('./agent-main.js')> {
  const stale = bundleStaleness(new URL('./', import.meta.url), 'agent')
  const bundle = './agent-bundle.js'
  if (stale === undefined) return await import(bundle) as typeof import('./agent-main.js')
  process.stderr.write(`meshvirt: ${stale}; running the separate modules (npm run build rebuilds the bundle)\n`)
  return await import('./agent-main.js')
}

/**
 * The CLI's bundle (a command starts in ~0.35 s instead of ~0.95 s), or, missing or stale, the same
 * code as compiled: only slower, so without a word that would mix into the command's own output.
 */
async function loadCli (): Promise<typeof import('./main.js')> {
  const bundle = './cli-bundle.js'
  if (bundleStaleness(new URL('./', import.meta.url), 'cli') === undefined) return await import(bundle) as typeof import('./main.js')
  return await import('./main.js')
}
