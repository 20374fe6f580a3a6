import { pb, type meshvirt } from '@meshvirt/proto'

/** What happened, in the words `meshvirt events` prints. */
export type EventKind =
  | 'vm-created' | 'vm-started' | 'vm-stopped' | 'vm-deleted' | 'vm-crashed' | 'vm-failed' | 'vm-migrated' | 'vm-migration-failed'
  | 'vm-lease-lost' | 'vm-fenced' | 'vm-lease-resumed' | 'vm-elected' | 'vm-failed-over' | 'vm-demoted'
  | 'vm-restarted'
  | 'vm-balanced' | 'balance-recommended' | 'balance-failed' | 'balance-mode-set'
  | 'group-scaled' | 'group-owned' | 'group-member-replaced'
  | 'api-request'
  | 'image-fetched' | 'image-fetch-failed'
  | 'host-started' | 'host-stopping' | 'host-joined' | 'host-suspect' | 'host-dead' | 'host-alive'

const KIND_TO_WIRE: Record<EventKind, meshvirt.v1.EventKind> = {
  'vm-created': pb.EventKind.EVENT_KIND_VM_CREATED,
  'vm-started': pb.EventKind.EVENT_KIND_VM_STARTED,
  'vm-stopped': pb.EventKind.EVENT_KIND_VM_STOPPED,
  'vm-deleted': pb.EventKind.EVENT_KIND_VM_DELETED,
  'vm-crashed': pb.EventKind.EVENT_KIND_VM_CRASHED,
  'vm-failed': pb.EventKind.EVENT_KIND_VM_FAILED,
  'vm-migrated': pb.EventKind.EVENT_KIND_VM_MIGRATED,
  'vm-migration-failed': pb.EventKind.EVENT_KIND_VM_MIGRATION_FAILED,
  'vm-lease-lost': pb.EventKind.EVENT_KIND_VM_LEASE_LOST,
  'vm-fenced': pb.EventKind.EVENT_KIND_VM_FENCED,
  'vm-lease-resumed': pb.EventKind.EVENT_KIND_VM_LEASE_RESUMED,
  'vm-elected': pb.EventKind.EVENT_KIND_VM_ELECTED,
  'vm-failed-over': pb.EventKind.EVENT_KIND_VM_FAILED_OVER,
  'vm-demoted': pb.EventKind.EVENT_KIND_VM_DEMOTED,
  'vm-restarted': pb.EventKind.EVENT_KIND_VM_RESTARTED,
  'vm-balanced': pb.EventKind.EVENT_KIND_VM_BALANCED,
  'balance-recommended': pb.EventKind.EVENT_KIND_BALANCE_RECOMMENDED,
  'balance-failed': pb.EventKind.EVENT_KIND_BALANCE_FAILED,
  'balance-mode-set': pb.EventKind.EVENT_KIND_BALANCE_MODE_SET,
  'group-scaled': pb.EventKind.EVENT_KIND_GROUP_SCALED,
  'group-owned': pb.EventKind.EVENT_KIND_GROUP_OWNED,
  'group-member-replaced': pb.EventKind.EVENT_KIND_GROUP_MEMBER_REPLACED,
  'api-request': pb.EventKind.EVENT_KIND_API_REQUEST,
  'image-fetched': pb.EventKind.EVENT_KIND_IMAGE_FETCHED,
  'image-fetch-failed': pb.EventKind.EVENT_KIND_IMAGE_FETCH_FAILED,
  'host-started': pb.EventKind.EVENT_KIND_HOST_STARTED,
  'host-stopping': pb.EventKind.EVENT_KIND_HOST_STOPPING,
  'host-joined': pb.EventKind.EVENT_KIND_HOST_JOINED,
  'host-suspect': pb.EventKind.EVENT_KIND_HOST_SUSPECT,
  'host-dead': pb.EventKind.EVENT_KIND_HOST_DEAD,
  'host-alive': pb.EventKind.EVENT_KIND_HOST_ALIVE
}
const WIRE_TO_KIND = new Map<number, EventKind>(Object.entries(KIND_TO_WIRE).map(([k, v]) => [v, k as EventKind]))

/**
 * One event of the cluster stream, as plain data. `hostId` emitted and signed it; `seq` counts
 * 1, 2, 3 … per `incarnation` of that host, so receivers keep each emitter's events in order.
 * Fields that do not apply are '' or 0.
 */
export interface ClusterEvent {
  hostId: string
  incarnation: number
  seq: number
  timeMs: number
  kind: EventKind
  vmId: string
  vmName: string
  vmEpoch: number
  /** The host a host-* event is about (the emitter itself for host-joined/host-stopping). */
  subjectHostId: string
  message: string
}

/** The fields an emitter chooses; identity, numbering and time are added by the EventBus. */
export type EventDraft = Pick<ClusterEvent, 'kind'> & Partial<Pick<ClusterEvent, 'vmId' | 'vmName' | 'vmEpoch' | 'subjectHostId' | 'message'>>

export function eventToWire (e: ClusterEvent): meshvirt.v1.IClusterEvent {
  return {
    hostId: e.hostId,
    incarnation: e.incarnation,
    seq: e.seq,
    timeMs: e.timeMs,
    kind: KIND_TO_WIRE[e.kind],
    vmId: e.vmId,
    vmName: e.vmName,
    vmEpoch: e.vmEpoch,
    subjectHostId: e.subjectHostId,
    message: e.message
  }
}

/** Undefined for a kind this version does not know (a newer emitter): such events are skipped, not fatal. */
export function eventFromWire (w: meshvirt.v1.IClusterEvent): ClusterEvent | undefined {
  const kind = WIRE_TO_KIND.get(w.kind ?? 0)
  if (kind === undefined) return undefined
  return {
    hostId: w.hostId ?? '',
    incarnation: Number(w.incarnation ?? 0),
    seq: Number(w.seq ?? 0),
    timeMs: Number(w.timeMs ?? 0),
    kind,
    vmId: w.vmId ?? '',
    vmName: w.vmName ?? '',
    vmEpoch: Number(w.vmEpoch ?? 0),
    subjectHostId: w.subjectHostId ?? '',
    message: w.message ?? ''
  }
}
