#!/usr/bin/env node
// Two small modules first, then the CLI: the heap setting must precede the loading of the
// ~1,300 modules behind main.js (loading them is what grew the young generation), and libp2p 3
// needs Promise.withResolvers on Node 20.
import '@meshvirt/agent/process-heap'
import '@meshvirt/agent/polyfill'

// `meshvirt agent` loads only what the agent runs: agent-main.ts and what it imports, bundled into
// one module by `npm run build` (scripts/bundle-agent.mjs). Every other command loads the whole CLI.
const { main } = process.argv[2] === 'agent' ? await loadAgent() : await import('./main.js')
main(process.argv.slice(2), {
  env: process.env,
  out: (text) => { process.stdout.write(text + '\n') },
  err: (text) => { process.stderr.write(text + '\n') }
}).then((code) => { process.exitCode = code }, (err: unknown) => {
  process.stderr.write(`meshvirt: unexpected failure: ${String(err)}\n`)
  process.exitCode = 1
})

async function loadAgent (): Promise<typeof import('./agent-main.js')> {
  const bundle = './agent-bundle.js'
  try {
    return await import(bundle) as typeof import('./agent-main.js')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND' || !String((err as Error).message).includes('agent-bundle.js')) throw err
    process.stderr.write('meshvirt: the agent bundle is missing (dist/agent-bundle.js): run `npm run build`\n')
    process.exit(1)
  }
}
