import type { meshvirt } from '@meshvirt/proto'
import type { Resources } from '../resources.js'
import { restartPolicyFromWire } from '../vm/restart-policy.js'
import { vmStateFromWire } from '../vm/vm-state.js'

/** A VM as the CLI shows it: plain data decoded from the control API's VmInfo. */
export interface VmView {
  id: string
  name: string
  owner: string
  epoch: number
  state: string
  resources: Resources
  /** Room to grow its memory while it runs (`--max-memory`); 0: none. */
  maxMemoryBytes: number
  /** Room for vCPUs while it runs (`--max-vcpus`); 0: none. */
  maxVcpus: number
  group: string
  createdAtMs: number
  startedAtMs: number
  lastError: string
  /** `library`: the library image's NAME:TAG and the digest it was resolved to at create (empty: none). */
  boot: { image: string, library: { ref: string, digest: string }, kernel: string, initrd: string, cmdline: string }
  /** Its NICs: network, the address claimed for it, the MAC (the same on every host). */
  nics: Array<{ network: string, ip: string, mac: string }>
  /** The first-boot guest config, summarised (the keys and user-data themselves stay in the spec); null when none. */
  guest: { hostname: string, sshKeys: number, userDataBytes: number } | null
  /** never, on-crash or always (`vm create --restart`). */
  restart: string
  /** Times the owner started the guest again after it exited on its own (since that agent started). */
  restarts: number
  /**
   * Set when the VM's state is `unknown`: it is listed from what peers last heard, its owner being
   * dead, gone or unreachable since `sinceMs`.
   */
  unknown: { ownerHostname: string, ownerLiveness: string, sinceMs: number, lastHeardMs: number, lastState: string } | undefined
  /** downtimeMs: QEMU's own measure on the source; pauseMs: the guest's, source stop → destination resume (0: unknown). */
  lastMigration: { fromHost: string, toHost: string, downtimeMs: number, pauseMs: number, totalMs: number, finishedAtMs: number, error: string, path: string, pathReason: string, channels: number, throughputMBs: number, ramBytes: number, diskBytes: number } | undefined
  /** The library image the host that will run it is fetching before the guest starts (undefined: none). */
  imageFetch: { ref: string, digest: string, chunksHeld: number, chunkCount: number, bytesHeld: number, sizeBytes: number, startedAtMs: number } | undefined
  /** Disaster recovery: wanted replicas, RPO, and each holder with the point it holds. Undefined without replicas. */
  replication: {
    replicas: number
    rpoMs: number
    spreadBy: string
    points: number
    lastPauseMs: number
    maxPauseMs: number
    lastError: string
    holders: Array<{ hostId: string, hostname: string, state: string, seq: number, takenAtMs: number, lagMs: number | null, sentBytes: number, lastError: string }>
  } | undefined
  /** The VM's ownership lease as its owner sees it (replicated VMs). */
  lease: { role: string, epoch: number, owner: string, members: string[], witness: string, running: boolean, expiresAtMs: number, fenceAtMs: number } | undefined
  /** What the lease did on the owner, oldest first: lease-lost, fenced, elected, promoted, resumed … */
  leaseHistory: Array<{ type: string, atMs: number, epoch: number, detail: string, hostId: string }>
  placement: {
    chosenHost: string
    totalScore: number
    attempts: number
    candidates: number
    summary: string
    scores: Array<{ scorer: string, value: number, weight: number }>
    rejected: Array<{ hostId: string, filter: string, reason: string }>
  } | undefined
}

export function vmView (info: meshvirt.v1.IVmInfo): VmView {
  const s = info.summary ?? {}
  const p = info.placement
  const boot = info.spec?.boot ?? {}
  return {
    id: s.id ?? '',
    name: s.name ?? '',
    owner: s.owner ?? '',
    epoch: Number(s.epoch ?? 0),
    state: vmStateFromWire(s.state),
    resources: { vcpus: s.resources?.vcpus ?? 0, memoryBytes: Number(s.resources?.memoryBytes ?? 0), diskBytes: Number(s.resources?.diskBytes ?? 0) },
    maxMemoryBytes: Number(info.spec?.maxMemoryBytes ?? 0),
    maxVcpus: info.spec?.maxVcpus ?? 0,
    group: s.group ?? '',
    createdAtMs: Number(info.createdAtMs ?? 0),
    startedAtMs: Number(info.startedAtMs ?? 0),
    lastError: info.lastError ?? '',
    boot: { image: boot.image ?? '', library: { ref: boot.library?.ref ?? '', digest: boot.library?.digest ?? '' }, kernel: boot.kernel ?? '', initrd: boot.initrd ?? '', cmdline: boot.cmdline ?? '' },
    nics: (info.spec?.nics ?? []).map((n) => ({ network: n.network ?? '', ip: n.ip ?? '', mac: n.mac ?? '' })),
    guest: info.spec?.guest == null
      ? null
      : { hostname: info.spec.guest.hostname ?? '', sshKeys: (info.spec.guest.sshAuthorizedKeys ?? []).length, userDataBytes: Buffer.byteLength(info.spec.guest.userData ?? '', 'utf8') },
    restart: restartPolicyFromWire(info.spec?.restart),
    restarts: info.restarts ?? 0,
    unknown: info.unknown == null
      ? undefined
      : {
          ownerHostname: info.unknown.ownerHostname ?? '',
          ownerLiveness: info.unknown.ownerLiveness ?? '',
          sinceMs: Number(info.unknown.sinceMs ?? 0),
          lastHeardMs: Number(info.unknown.lastHeardMs ?? 0),
          lastState: vmStateFromWire(info.unknown.lastState)
        },
    lastMigration: info.lastMigration == null
      ? undefined
      : {
          fromHost: info.lastMigration.fromHost ?? '',
          toHost: info.lastMigration.toHost ?? '',
          downtimeMs: Number(info.lastMigration.downtimeMs ?? 0),
          pauseMs: Number(info.lastMigration.pauseMs ?? 0),
          totalMs: Number(info.lastMigration.totalMs ?? 0),
          finishedAtMs: Number(info.lastMigration.finishedAtMs ?? 0),
          error: info.lastMigration.error ?? '',
          path: info.lastMigration.path ?? '',
          pathReason: info.lastMigration.pathReason ?? '',
          channels: Number(info.lastMigration.channels ?? 0),
          throughputMBs: Number(info.lastMigration.throughputMbS ?? 0),
          ramBytes: Number(info.lastMigration.ramBytes ?? 0),
          diskBytes: Number(info.lastMigration.diskBytes ?? 0)
        },
    imageFetch: info.imageFetch == null
      ? undefined
      : {
          ref: info.imageFetch.ref ?? '',
          digest: info.imageFetch.digest ?? '',
          chunksHeld: info.imageFetch.chunksHeld ?? 0,
          chunkCount: info.imageFetch.chunkCount ?? 0,
          bytesHeld: Number(info.imageFetch.bytesHeld ?? 0),
          sizeBytes: Number(info.imageFetch.sizeBytes ?? 0),
          startedAtMs: Number(info.imageFetch.startedAtMs ?? 0)
        },
    replication: replicationView(info),
    lease: info.lease == null
      ? undefined
      : {
          role: info.lease.role ?? '',
          epoch: Number(info.lease.epoch ?? 0),
          owner: info.lease.owner ?? '',
          members: info.lease.members ?? [],
          witness: info.lease.witness ?? '',
          running: info.lease.running ?? false,
          expiresAtMs: Number(info.lease.expiresAtMs ?? 0),
          fenceAtMs: Number(info.lease.fenceAtMs ?? 0)
        },
    leaseHistory: (info.leaseHistory ?? []).map((h) => ({ type: h.type ?? '', atMs: Number(h.atMs ?? 0), epoch: Number(h.epoch ?? 0), detail: h.detail ?? '', hostId: h.hostId ?? '' })),
    placement: p == null
      ? undefined
      : {
          chosenHost: p.chosenHost ?? '',
          totalScore: p.totalScore ?? 0,
          attempts: p.attempts ?? 0,
          candidates: p.candidates ?? 0,
          summary: p.summary ?? '',
          scores: (p.scores ?? []).map((x) => ({ scorer: x.scorer ?? '', value: x.value ?? 0, weight: x.weight ?? 0 })),
          rejected: (p.rejected ?? []).map((r) => ({ hostId: r.hostId ?? '', filter: r.filter ?? '', reason: r.reason ?? '' }))
        }
  }
}

function replicationView (info: meshvirt.v1.IVmInfo): VmView['replication'] {
  const spec = info.spec ?? {}
  const holders = info.replicas ?? []
  if ((spec.replicas ?? 0) === 0 && holders.length === 0) return undefined
  const r = info.replication ?? {}
  return {
    replicas: spec.replicas ?? 0,
    rpoMs: r.rpoMs ?? spec.rpoMs ?? 0,
    spreadBy: spec.spreadBy ?? '',
    points: Number(r.points ?? 0),
    lastPauseMs: r.lastPauseMs ?? 0,
    maxPauseMs: r.maxPauseMs ?? 0,
    lastError: r.lastError ?? '',
    holders: holders.map((h) => ({
      hostId: h.hostId ?? '',
      hostname: h.hostname ?? '',
      state: h.state ?? '',
      seq: Number(h.seq ?? 0),
      takenAtMs: Number(h.takenAtMs ?? 0),
      lagMs: h.lagMs == null || Number(h.seq ?? 0) === 0 ? null : h.lagMs,
      sentBytes: Number(h.sentBytes ?? 0),
      lastError: h.lastError ?? ''
    }))
  }
}
