/**
 * The gossip benchmark's host process: the agent's heap setting and polyfill first, as
 * `meshvirt agent` loads them, then the mesh host of gossip-agent.ts.
 */
import '@meshvirt/agent/process-heap'
import '@meshvirt/mesh/polyfill'

const { main } = await import('./gossip-agent.js')
main().catch((err: unknown) => {
  process.stderr.write(`gossip agent failed: ${String(err)}\n`)
  process.exit(1)
})
