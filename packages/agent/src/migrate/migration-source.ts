import { randomUUID } from 'node:crypto'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { Hypervisor, LiveMigration, MigrationProgress } from '@meshvirt/hypervisor'
import { openTunnelEntrance, type ClusterView, type MeshNode, type TunnelEntrance } from '@meshvirt/mesh'
import { assumeRemoved, placeVm, toPlacementExplanation } from '@meshvirt/placement'
import { pb, type meshvirt } from '@meshvirt/proto'
import { ControlError } from '../control/errors.js'
import type { Logger } from '../log/logger.js'
import { toHostSnapshot } from '../negotiate/host-snapshot.js'
import { rebindName } from '../negotiate/name-authority.js'
import type { PeerClient } from '../negotiate/peer-client.js'
import { placementRequestFor } from '../negotiate/placement-request.js'
import type { MigrationStates } from './migration-states.js'
import type { VmPreparation } from '../vm/vm-preparation.js'
import { specResources } from '../vm/vm-spec.js'
import { vmSpecToWire, type VmSpec } from '../vm/vm-spec-codec.js'
import { guestPauseMs } from './guest-pause.js'
import { migrateOutOptions } from './migration-params.js'
import { watchPeer } from './peer-watch.js'
import { DEFAULT_MULTIFD_CHANNELS, directEndpoint, newMigrationPsk, parseVia, reachable, throughputMBs, type MigrationPath } from './direct-path.js'

/** Destinations tried (Reserve) before the migration is given up. */
const MAX_DESTINATIONS_TRIED = 3
/** The destination's Reserve must outlive PrepareIncoming (QEMU start) comfortably. */
const MIGRATION_RESERVATION_TTL_MS = 60_000
/** Where a failed migration leaves the VM, as the messages say it. */
const OUTCOME = { running: 'keeps running', stopped: 'stays stopped', crashed: 'crashed (its QEMU exited)' } as const

/** What this host's outgoing migrations did (for /metrics). */
export interface MigrationStats {
  succeeded: number
  failed: number
  /** Of the last successful one: guest pause and whole duration. */
  lastDowntimeMs: number
  lastTotalMs: number
  inFlight: number
}

export interface MigrationSourceDeps {
  selfId: string
  dataDir: string
  view: ClusterView
  mesh: Pick<MeshNode, 'libp2p' | 'multiaddrs'>
  peers: PeerClient
  states: MigrationStates
  hypervisor: Hypervisor & LiveMigration
  /** Gives back the VM's per-VM resources here once the destination owns it. */
  preparation: VmPreparation
  log: Logger
  /** The VM's replica holders, handed to the destination with ownership (replication). */
  holdersOf?: (vmId: string) => string[]
  /** How long this host's lease on the VM still holds, ms (replicated VMs). */
  leaseRemainingMs?: (vmId: string) => number | undefined
  /** Tells the VM's lease group that `to` takes it over at epoch + 1 (called before CompleteIncoming). */
  handOver?: (vmId: string, to: string) => void
}

/**
 * The source half of a live migration (docs/design.md, "Migrate"): reserve on the destination,
 * have it prepare a paused incoming QEMU, stream the guest straight to it over TCP with QEMU's TLS
 * and a one-time key agreed here (direct-path.ts), or through the mesh (QEMU ↔ unix socket ↔
 * libp2p stream ↔ unix socket ↔ QEMU), disks mirrored over NBD the same way, hand ownership
 * over with epoch + 1 once the destination runs it, and only then quit here. On any failure the
 * guest keeps running here (or, if its QEMU died in the attempt, is reported crashed and left to
 * its restart policy) and the destination removes what it prepared.
 */
export class MigrationSource {
  private readonly progress = new Map<string, meshvirt.v1.IMigrationProgress>()
  readonly stats: MigrationStats = { succeeded: 0, failed: 0, lastDowntimeMs: 0, lastTotalMs: 0, inFlight: 0 }

  constructor (private readonly deps: MigrationSourceDeps) {}

  progressOf (id: string): meshvirt.v1.IMigrationProgress | undefined {
    return this.progress.get(id)
  }

  async migrate (vmId: string, toHost: string, params: meshvirt.v1.IMigrationParams | null | undefined): Promise<{ record: meshvirt.v1.IMigrationRecord, destination: string }> {
    const { states, peers, hypervisor, log, selfId } = this.deps
    const { multifdChannels, ...options } = migrateOutOptions(params)
    const via = parseVia(params?.via)
    const vm = states.beginOutgoing(vmId)
    const spec = vm.spec
    // Cold: the VM is stopped. Its disk moves as a live migration's does, through a QEMU started
    // paused here (`-S`: the guest never runs), which the destination quits once it has arrived.
    const cold = vm.state === 'stopped'
    this.stats.inFlight++
    const started = Date.now()
    const record: meshvirt.v1.IMigrationRecord = { fromHost: selfId, startedAtMs: started, epoch: vm.epoch + 1 }
    const session = randomUUID()
    const entrances: TunnelEntrance[] = []
    let destination: string | undefined
    let prepared = false
    try {
      this.phase(vmId, 'reserve', started)
      const reserved = await this.reserveDestination(vmId, spec, vm.epoch + 1, toHost)
      destination = reserved.host
      record.toHost = destination
      const path = await this.choosePath(destination, via)
      const direct = path.path === 'direct-tls' ? { host: path.host, psk: newMigrationPsk(), channels: multifdChannels ?? DEFAULT_MULTIFD_CHANNELS } : undefined
      Object.assign(record, { path: path.path, pathReason: path.reason, channels: direct?.channels ?? 1 })
      this.phase(vmId, 'prepare', started, destination)
      // The DIMMs a running guest got (vm resize): the destination builds the same machine.
      const running = cold ? undefined : (await hypervisor.inspect(vmId)).spec
      const memoryDimmsMib = running?.memoryDimmsMiB ?? []
      const bootVcpus = running?.bootVcpus ?? 0
      const ready = await peers.negotiate(destination, {
        prepareIncoming: {
          token: reserved.token, vmId, spec: vmSpecToWire(spec), epoch: vm.epoch + 1, session, placement: reserved.placement, memoryDimmsMib, bootVcpus,
          ...(direct !== undefined ? { directHost: direct.host, tlsPsk: direct.psk, multifdChannels: direct.channels } : {})
        }
      }, 60_000)
      prepared = true
      const channels = direct !== undefined ? [] : ready.incomingReady?.channels ?? []
      const dir = join(this.deps.dataDir, 'mig')
      await mkdir(dir, { recursive: true, mode: 0o700 })
      for (const channel of channels) {
        if (channel !== 'ram' && channel !== 'nbd') throw new ControlError('INTERNAL', `destination offered an unknown tunnel channel ${channel}`)
        entrances.push(await openTunnelEntrance(this.deps.mesh.libp2p, { peer: destination, session, channel, socketPath: join(dir, `${session.slice(0, 8)}-${channel}.sock`) }))
      }
      const ram = direct !== undefined ? ready.incomingReady?.directMigration ?? undefined : entrances.find((e) => e.socketPath.endsWith('-ram.sock'))?.socketPath
      const nbd = direct !== undefined ? ready.incomingReady?.directNbd ?? undefined : entrances.find((e) => e.socketPath.endsWith('-nbd.sock'))?.socketPath
      if (ram === undefined || ram === '' || (direct !== undefined && !ram.startsWith('tcp:'))) throw new ControlError('INTERNAL', 'destination exposed no RAM channel')
      if (cold) await hypervisor.start(vmId, { paused: true })
      const watch = watchPeer(this.deps.mesh.libp2p, destination)
      const result = await hypervisor.migrateOut(vmId, {
        ...options,
        migrationSocket: ram,
        ...(nbd !== undefined && nbd !== '' ? { nbdSocket: nbd } : {}),
        ...((ready.incomingReady?.fullDisks ?? []).length > 0 ? { fullDisks: ready.incomingReady?.fullDisks ?? [] } : {}),
        ...(direct !== undefined ? { tls: { pskHex: direct.psk.toString('hex') }, multifdChannels: direct.channels } : {}),
        signal: watch.signal,
        onProgress: (p) => { this.progress.set(vmId, progressToWire(p, destination as string)) }
      }).catch((err: unknown) => {
        throw watch.lost() ? watch.signal.reason as Error : err
      }).finally(() => { watch.stop() })
      Object.assign(record, {
        throughputMbS: throughputMBs(result.ramTransferredBytes, result.ramMs),
        downtimeMs: result.downtimeMs,
        stoppedAtMs: Math.round(result.stoppedAt),
        totalMs: Date.now() - started,
        ramBytes: result.ramTransferredBytes,
        diskBytes: result.diskBytes
      })
      this.phase(vmId, 'complete', started, destination)
      record.finishedAtMs = Date.now()
      // A replicated VM, running or stopped, hands its lease group and its holders over: the members
      // take the destination's renewals at epoch + 1, and its holders follow the new owner.
      this.deps.handOver?.(vmId, destination)
      const completed = await peers.negotiate(destination, {
        completeIncoming: {
          vmId, session, epoch: vm.epoch + 1, record, stopped: cold,
          replicaHolders: this.deps.holdersOf?.(vmId) ?? [],
          leaseRemainingMs: cold ? 0 : Math.max(0, Math.floor(this.deps.leaseRemainingMs?.(vmId) ?? 0))
        }
      }, 60_000)
      const pause = cold ? undefined : guestPauseMs(record.stoppedAtMs, completed.incomingCompleted?.resumedAtMs)
      if (pause !== undefined) record.pauseMs = pause
    } catch (err) {
      const message = (err as Error).message
      record.error = message
      record.finishedAtMs = Date.now()
      if (prepared && destination !== undefined) {
        await peers.negotiate(destination, { abortIncoming: { vmId, session, reason: message } }).catch(() => {})
      }
      // migrateOut may have completed (guest paused here) before the hand-over failed. Cold: the
      // paused QEMU goes (the disk here is untouched: a mirror only reads it).
      if (cold) await hypervisor.kill(vmId).catch(() => {})
      else await hypervisor.resumeOutgoing(vmId).catch(() => {})
      // Asked, not assumed: the source QEMU may itself have died during the attempt.
      const left = cold ? 'stopped' : await this.guestLeft(vmId)
      states.outgoingFailed(vmId, record, left)
      this.stats.failed++
      log.warn(`${cold ? 'cold ' : ''}migration failed; the VM ${OUTCOME[left]} here`, { vm: vmId, peer: destination, err: message })
      throw new ControlError((err as ControlError).code === 'INVALID_ARGUMENT' ? 'INVALID_ARGUMENT' : 'MIGRATION_FAILED', `migration of ${vm.name} failed, it ${OUTCOME[left]} on this host: ${message}`)
    } finally {
      this.stats.inFlight--
      this.progress.delete(vmId)
      await Promise.allSettled(entrances.map(async (e) => { await e.close() }))
    }
    // The destination runs the guest and owns the VM: quit here, then forget it.
    await hypervisor.completeOutgoing(vmId).catch((err: unknown) => { log.warn('source QEMU did not quit cleanly', { vm: vmId, err: (err as Error).message }) })
    await hypervisor.destroy(vmId).catch((err: unknown) => { log.warn('could not remove the source copy', { vm: vmId, err: (err as Error).message }) })
    await this.deps.preparation.release(vmId)
    states.outgoingDone(vmId)
    await rebindName(this.deps.peers, this.deps.view, vm.name, vmId, destination as string)
    this.stats.succeeded++
    this.stats.lastDowntimeMs = Number(record.downtimeMs ?? 0)
    this.stats.lastTotalMs = Number(record.totalMs ?? 0)
    log.info(cold ? 'vm migrated out (cold)' : 'vm migrated out', { vm: vmId, peer: destination, path: record.path, channels: record.channels, throughputMBs: record.throughputMbS, downtimeMs: record.downtimeMs, pauseMs: record.pauseMs, totalMs: record.totalMs })
    return { record, destination: destination as string }
  }

  /** Whether the source guest survived a failed live migration: running, or its QEMU is gone. */
  private async guestLeft (vmId: string): Promise<'running' | 'crashed'> {
    try {
      return (await this.deps.hypervisor.inspect(vmId)).state === 'running' ? 'running' : 'crashed'
    } catch {
      return 'crashed'
    }
  }

  /**
   * Direct when asked, or under `auto` when the destination advertises an address this host
   * reaches (a TCP connection to its libp2p port there); the mesh tunnel otherwise.
   */
  private async choosePath (destination: string, via: 'direct' | 'mesh' | 'auto'): Promise<{ path: MigrationPath, host: string, reason: string }> {
    if (via === 'mesh') return { path: 'mesh', host: '', reason: 'asked for (--via mesh)' }
    const addrs = this.deps.view.get(destination)?.advert.addrs ?? []
    const endpoint = directEndpoint(addrs, this.deps.mesh.multiaddrs())
    if (endpoint === undefined) {
      if (via === 'direct') throw new ControlError('MIGRATION_FAILED', `destination ${destination} advertises no IP address for a direct migration (${addrs.join(' ') || 'none'}); use --via mesh`)
      return { path: 'mesh', host: '', reason: 'auto: the destination advertises no direct address' }
    }
    if (via === 'direct') return { path: 'direct-tls', host: endpoint.host, reason: 'asked for (--via direct)' }
    if (await reachable(endpoint.host, endpoint.port)) return { path: 'direct-tls', host: endpoint.host, reason: `auto: ${endpoint.host} reachable` }
    return { path: 'mesh', host: '', reason: `auto: ${endpoint.host}:${endpoint.port} not reachable from here` }
  }

  private async reserveDestination (vmId: string, spec: VmSpec, epoch: number, toHost: string): Promise<{ host: string, token: string, placement: meshvirt.v1.IPlacementExplanation }> {
    const { view, peers, selfId } = this.deps
    // The VM's own placement rules still hold; the host it leaves is excluded. A named
    // destination is a pin: placement still checks that the VM fits there.
    const { host: _pinnedAtCreate, ...rules } = placementRequestFor(spec, `${vmId}/migrate/${epoch}`)
    // The guest runs under this host's accelerator: QEMU cannot move it to another one.
    const here = view.get(selfId)
    const request = { ...rules, exclude: [selfId], ...(toHost !== '' ? { host: toHost } : {}), ...(here !== undefined ? { liveOn: toHostSnapshot(here).accelerator } : {}) }
    // Placed against the view without the VM itself: it is not in its own (anti-)affinity's way.
    const result = placeVm(request, view.hosts().map((h) => h.hostId === selfId ? assumeRemoved(toHostSnapshot(h), rules) : toHostSnapshot(h)))
    if (result.chosen === undefined) throw new ControlError('NO_CAPACITY', `no destination for the migration: ${result.summary}`)
    let attempts = 0
    for (const candidate of result.candidates.slice(0, MAX_DESTINATIONS_TRIED)) {
      attempts++
      const res = await peers.negotiate(candidate.hostId, {
        reserve: { requestId: `${vmId}/migrate/${epoch}/${attempts}`, brokerId: selfId, resources: specResources(spec), ttlMs: MIGRATION_RESERVATION_TTL_MS, vmId, epoch, role: pb.VmRole.VM_ROLE_OWNER }
      }).catch(() => undefined)
      if (res?.reserved != null) return { host: candidate.hostId, token: res.reserved.token ?? '', placement: toPlacementExplanation(result, attempts, candidate.hostId) }
    }
    throw new ControlError('NO_CAPACITY', `no destination could reserve the VM (${attempts} tried): ${result.summary}`)
  }

  private phase (vmId: string, phase: string, started: number, toHost = ''): void {
    this.progress.set(vmId, { ...this.progress.get(vmId), phase, toHost, elapsedMs: Date.now() - started })
  }
}

function progressToWire (p: MigrationProgress, toHost: string): meshvirt.v1.IMigrationProgress {
  return {
    toHost,
    phase: p.phase,
    elapsedMs: p.elapsedMs,
    diskCopiedBytes: p.disk?.copiedBytes ?? 0,
    diskTotalBytes: p.disk?.totalBytes ?? 0,
    ramTransferredBytes: p.ram?.transferredBytes ?? 0,
    ramRemainingBytes: p.ram?.remainingBytes ?? 0,
    ramTotalBytes: p.ram?.totalBytes ?? 0,
    dirtyPagesPerSec: p.ram?.dirtyPagesPerSec ?? 0
  }
}
