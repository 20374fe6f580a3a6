import type { meshvirt } from '@meshvirt/proto'
import { networkFromWire, type NetworkRecord } from '../network/network-record.js'

/** A network as `net ls --json` and `net show --json` print it: its record (no tombstone time) and its ports. */
export interface NetworkView extends Omit<NetworkRecord, 'deletedAtMs'> {
  ports: Array<{ vm: string, vmId: string, ip: string, mac: string, host: string, hostId: string }>
}

export function networkView (info: meshvirt.v1.INetworkInfo): NetworkView {
  const { deletedAtMs: _, ...record } = networkFromWire(info.network ?? {})
  return {
    ...record,
    ports: (info.ports ?? []).map((p) => ({ vm: p.vmName ?? '', vmId: p.vmId ?? '', ip: p.ip ?? '', mac: p.mac ?? '', host: p.hostname ?? '', hostId: p.hostId ?? '' }))
  }
}
