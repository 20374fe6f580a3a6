#!/usr/bin/env node
// Two small modules first, then the CLI: the heap setting must precede the loading of the
// ~1,300 modules behind main.js (loading them is what grew the young generation), and libp2p 3
// needs Promise.withResolvers on Node 20.
import '@meshvirt/agent/process-heap'
import '@meshvirt/agent/polyfill'

// `meshvirt agent` loads only what the agent runs (agent-main.ts); every other command, the whole CLI.
const { main } = process.argv[2] === 'agent' ? await import('./agent-main.js') : await import('./main.js')
main(process.argv.slice(2), {
  env: process.env,
  out: (text) => { process.stdout.write(text + '\n') },
  err: (text) => { process.stderr.write(text + '\n') }
}).then((code) => { process.exitCode = code }, (err: unknown) => {
  process.stderr.write(`meshvirt: unexpected failure: ${String(err)}\n`)
  process.exitCode = 1
})
