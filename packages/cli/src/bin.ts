#!/usr/bin/env node
// libp2p 3 needs Promise.withResolvers on Node 20: the polyfill loads before anything else.
import '@meshvirt/agent/polyfill'
import { main } from './main.js'

main(process.argv.slice(2), {
  env: process.env,
  out: (text) => { process.stdout.write(text + '\n') },
  err: (text) => { process.stderr.write(text + '\n') }
}).then((code) => { process.exitCode = code }, (err: unknown) => {
  process.stderr.write(`meshvirt: unexpected failure: ${String(err)}\n`)
  process.exitCode = 1
})
