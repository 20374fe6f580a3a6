/**
 * The agent's replica building blocks, taken from its build output until `@meshvirt/agent` re-exports
 * them from its index (the agent's lead wires replication in; then import from '@meshvirt/agent').
 * `npm run bench` builds every package first, so the file is there.
 */
export { OutgoingPoint, ReplicaHolderService, shipPoint, TokenBucket, type ShipResult } from '../../packages/agent/dist/replica/index.js'
