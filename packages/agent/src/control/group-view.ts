import { pb, type meshvirt } from '@meshvirt/proto'
import { groupFromWire } from '../vm-group/group-record.js'

/** A group as `group ls --json` and `group show --json` print it. */
export interface GroupView {
  name: string
  id: string
  /** The desired count (0 once deleted). */
  count: number
  revision: number
  createdAtMs: number
  /** Set while a deleted group's members are being removed. */
  deletedAtMs: number
  owner: string
  ownerHostname: string
  template: { vcpus: number, memoryBytes: number, diskBytes: number, image: string, spreadBy: string, replicas: number }
  members: Array<{ index: number, name: string, vmId: string, state: string, host: string, hostId: string }>
}

export function groupView (info: meshvirt.v1.IGroupInfo): GroupView {
  const g = groupFromWire(info.group ?? {})
  const t = pb.VmSpec.decode(g.template)
  const boot = t.boot
  return {
    name: g.name,
    id: g.id,
    count: g.deletedAtMs > 0 ? 0 : g.count,
    revision: g.revision,
    createdAtMs: g.createdAtMs,
    deletedAtMs: g.deletedAtMs,
    owner: info.owner ?? '',
    ownerHostname: info.ownerHostname ?? '',
    template: {
      vcpus: t.resources?.vcpus ?? 0,
      memoryBytes: Number(t.resources?.memoryBytes ?? 0),
      diskBytes: Number(t.resources?.diskBytes ?? 0),
      image: [boot?.library?.ref, boot?.image, boot?.kernel].find((x): x is string => typeof x === 'string' && x !== '') ?? '',
      spreadBy: t.spreadBy ?? '',
      replicas: t.replicas ?? 0
    },
    members: (info.members ?? []).map((m) => ({ index: m.index ?? 0, name: m.vmName ?? '', vmId: m.vmId ?? '', state: m.state ?? '', host: m.hostname ?? '', hostId: m.hostId ?? '' }))
  }
}
