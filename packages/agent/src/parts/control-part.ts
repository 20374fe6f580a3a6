import { pb } from '@meshvirt/proto'
import { ConsoleService, ownerLocator } from '../console/console-service.js'
import { createControlHandler, type Handler } from '../control/control-handler.js'
import { ControlServer } from '../control/control-server.js'
import { ControlError } from '../control/errors.js'
import type { HostAdminState } from '../host/admin-state.js'
import type { Monitoring } from '../monitor/index.js'
import type { Broker } from '../negotiate/broker.js'
import { CONTROL_PROTOCOL } from '../negotiate/protocols.js'
import type { VmRecords } from '../records/vm-records.js'
import type { VmRow } from '../store/state-store.js'
import type { HostParts } from './host-parts.js'
import type { MigrationPart } from './migration-part.js'
import type { ReplicationPart } from './replication-part.js'

/** Longest a peer's control request may run here (a forwarded `vm migrate` runs to its end). */
export const CONTROL_HANDLER_TIMEOUT_MS = 20 * 60_000

export interface ControlPartOptions {
  controlSocket: string
  broker: Broker
  admin: HostAdminState
  vmRecords: VmRecords
  monitoring: Monitoring
  migration?: MigrationPart
  replicas?: ReplicationPart
  /** Bodies other parts answer (networks: createNetwork, listNetworks, …), by oneof name. */
  extra?: Record<string, Handler>
  /** After a VM is deleted by its owner: what other parts free cluster-wide for it (its addresses). */
  onDeleted?: (vm: VmRow) => Promise<void>
}

/**
 * The control API, wherever a request comes from: the local socket (the CLI on this host), peers
 * forwarding a request to the VM's owner (the control protocol), and consoles (`vm console`) —
 * the last part to start, so a request never reaches a part that is not up yet.
 */
export async function startControl (p: HostParts, o: ControlPartOptions): Promise<{ control: Handler }> {
  const { selfId, root, node, peers, teardown } = p
  const records = o.vmRecords
  const control = createControlHandler({
    selfId, view: node.view, vms: p.vms, broker: o.broker, peers, log: root.child('control', { host: selfId }), admin: o.admin, records,
    extra: { ...o.monitoring.controlHandlers, ...o.extra, syncTombstones: async (req) => await records.handleSync(req) },
    ...(o.onDeleted !== undefined ? { onDeleted: o.onDeleted } : {}),
    ...(o.migration !== undefined ? { migrations: o.migration.source } : {}),
    ...(o.replicas !== undefined ? { replication: o.replicas.replication } : {})
  })
  const controlBytes = async (bytes: Uint8Array): Promise<Uint8Array> => {
    let res
    try {
      const req = pb.ControlRequest.decode(bytes)
      res = { ...await control(req), requestId: req.requestId }
    } catch (err) {
      res = { error: (err instanceof ControlError ? err : new ControlError('INTERNAL', (err as Error).message)).toWire() }
    }
    return pb.ControlResponse.encode(res).finish()
  }
  peers.registerLocal(CONTROL_PROTOCOL, controlBytes)
  await node.handle(CONTROL_PROTOCOL, async (b) => await controlBytes(b), { timeoutMs: CONTROL_HANDLER_TIMEOUT_MS })

  const consoles = new ConsoleService({ selfId, libp2p: node.libp2p, vms: p.vms, hypervisor: p.hypervisor, locate: ownerLocator(control), log: root.child('console', { host: selfId }) })
  await consoles.start()
  teardown.add('consoles', async () => { await consoles.stop() })
  const server = new ControlServer(o.controlSocket, control, root.child('control', { host: selfId }), { attachConsole: async (req, socket) => { await consoles.attachClient(req, socket) } })
  await server.start()
  teardown.add('control socket', async () => { await server.stop() })
  return { control }
}
