import { checkMultifdChannels, type Hypervisor, type IncomingTcp, type LiveMigration } from '@meshvirt/hypervisor'
import type { TunnelExit, TunnelExits } from '@meshvirt/mesh'
import type { meshvirt } from '@meshvirt/proto'
import { ControlError } from '../control/errors.js'
import type { Logger } from '../log/logger.js'
import type { VmManager } from '../vm/vm-manager.js'
import type { MigrationStates } from './migration-states.js'
import { parseVmSpec } from '../vm/vm-spec.js'
import type { VmPreparation } from '../vm/vm-preparation.js'
import { guestPauseMs } from './guest-pause.js'
import { freePort, isOwnHost } from './direct-path.js'

/** An incoming migration not completed within this is given up (the source's migrateOut timed out long before). */
export const INCOMING_TTL_MS = 15 * 60_000

interface IncomingSession {
  session: string
  source: string
  exits: TunnelExit[]
  timer: NodeJS.Timeout
}

export interface MigrationDestinationDeps {
  vms: VmManager
  states: MigrationStates
  hypervisor: Hypervisor & LiveMigration
  /** The arriving VM's disks and other per-VM resources, as for any VM that comes to exist here. */
  preparation: VmPreparation
  exits: TunnelExits
  log: Logger
  /** This host's libp2p listen addresses: the only IPs a direct migration may listen on. */
  listenAddrs?: () => string[]
  /**
   * A replicated VM arrived: its replica holders (the owner's lease group) and how long the source's
   * lease still held when it handed the VM over (ms, 0: none).
   */
  arrivedReplicated?: (vmId: string, holders: string[], leaseRemainingMs: number) => void
}

/**
 * The destination half of a live migration: turns the source's reservation into a paused
 * incoming QEMU, exposes its sockets to that source only (tunnel session), and takes the VM
 * as its own (epoch + 1) at CompleteIncoming — or removes every trace at AbortIncoming.
 */
export class MigrationDestination {
  private readonly sessions = new Map<string, IncomingSession>()

  constructor (private readonly deps: MigrationDestinationDeps) {}

  async prepare (req: meshvirt.v1.PrepareIncoming, source: string): Promise<meshvirt.v1.IIncomingReady> {
    if (req.spec == null) throw new ControlError('INVALID_ARGUMENT', 'PrepareIncoming without a VM spec')
    const spec = parseVmSpec(req.spec)
    if (!/^[a-z0-9-]{8,64}$/.test(req.session)) throw new ControlError('INVALID_ARGUMENT', 'bad migration session id')
    const { states, hypervisor, preparation, exits, log } = this.deps
    states.recordIncoming({ token: req.token, vmId: req.vmId, spec, epoch: Number(req.epoch), placement: req.placement })
    const opened: TunnelExit[] = []
    try {
      const direct = await this.directListen(req)
      const prepared = await preparation.prepare(req.vmId, spec, { kind: 'incoming' })
      const driver = { ...prepared, ...(req.memoryDimmsMib.length > 0 ? { memoryDimmsMiB: [...req.memoryDimmsMib] } : {}), ...(req.bootVcpus > 0 ? { bootVcpus: req.bootVcpus } : {}) }
      const incoming = await hypervisor.prepareIncoming(driver, { disks: 'mirror', ...(direct !== undefined ? { tcp: direct } : {}) })
      // A disk on a library base that came without it (the image resource could not fetch it): whole.
      const fullDisks = (spec.boot.library?.digest ?? '') !== ''
        ? (driver.disks ?? []).filter((d) => d.sharedBase !== true).map((d) => d.name)
        : []
      if (direct !== undefined) {
        const timer = setTimeout(() => { void this.abort({ vmId: req.vmId, session: req.session, reason: 'timed out' } as meshvirt.v1.AbortIncoming, source) }, INCOMING_TTL_MS)
        timer.unref()
        this.sessions.set(req.vmId, { session: req.session, source, exits: [], timer })
        log.info('incoming migration prepared', { vm: req.vmId, peer: source, session: req.session, path: 'direct-tls', migration: incoming.migrationSocket, nbd: incoming.nbdSocket, channels: direct.multifdChannels })
        return { channels: [], directMigration: incoming.migrationSocket, directNbd: incoming.nbdSocket ?? '', fullDisks }
      }
      opened.push(exits.expose({ session: req.session, channel: 'ram', socketPath: incoming.migrationSocket, peer: source }))
      if (incoming.nbdSocket !== undefined) opened.push(exits.expose({ session: req.session, channel: 'nbd', socketPath: incoming.nbdSocket, peer: source }))
      const timer = setTimeout(() => { void this.abort({ vmId: req.vmId, session: req.session, reason: 'timed out' } as meshvirt.v1.AbortIncoming, source) }, INCOMING_TTL_MS)
      timer.unref()
      this.sessions.set(req.vmId, { session: req.session, source, exits: opened, timer })
      log.info('incoming migration prepared', { vm: req.vmId, peer: source, session: req.session })
      return { channels: incoming.nbdSocket !== undefined ? ['ram', 'nbd'] : ['ram'], fullDisks }
    } catch (err) {
      await Promise.allSettled(opened.map(async (e) => { await e.close() }))
      await hypervisor.abortIncoming(req.vmId).catch(() => {})
      await preparation.release(req.vmId)
      states.dropIncoming(req.vmId)
      throw err
    }
  }

  /**
   * Direct path: listen only on the address the source asked for, which must be one of this host's
   * own (advertised) listen IPs, on ports free now, with the source's one-time key.
   */
  private async directListen (req: meshvirt.v1.PrepareIncoming): Promise<IncomingTcp | undefined> {
    if (req.directHost === '') return undefined
    const own = this.deps.listenAddrs?.() ?? []
    if (!isOwnHost(req.directHost, own)) throw new ControlError('INVALID_ARGUMENT', `${req.directHost} is not an address this host listens on (${own.join(' ')}); migrate with --via mesh`)
    if (req.tlsPsk.length !== 32) throw new ControlError('INVALID_ARGUMENT', 'a direct migration needs a 256-bit key')
    checkMultifdChannels(req.multifdChannels === 0 ? undefined : req.multifdChannels)
    return {
      host: req.directHost, port: await freePort(req.directHost), nbdPort: await freePort(req.directHost),
      tls: { pskHex: Buffer.from(req.tlsPsk).toString('hex') },
      ...(req.multifdChannels > 0 ? { multifdChannels: req.multifdChannels } : {})
    }
  }

  async complete (req: meshvirt.v1.CompleteIncoming, source: string): Promise<meshvirt.v1.IIncomingCompleted> {
    const s = this.session(req.vmId, req.session, source)
    const { resumedAt } = await this.deps.hypervisor.completeIncoming(req.vmId, { stopped: req.stopped })
    this.end(req.vmId, s)
    // The source learns the resume in the answer; the record kept here (the owner's, the one
    // `vm show` reads) gets the same pause from the source's stop stamp.
    const resumedAtMs = Math.round(resumedAt)
    const pauseMs = req.stopped ? undefined : guestPauseMs(req.record?.stoppedAtMs, resumedAtMs)
    this.deps.states.incomingArrived(req.vmId, { ...req.record, ...(pauseMs !== undefined ? { pauseMs } : {}) }, req.stopped)
    if (req.replicaHolders.length > 0 || req.leaseRemainingMs > 0) this.deps.arrivedReplicated?.(req.vmId, req.replicaHolders, req.leaseRemainingMs)
    const row = this.deps.vms.get(req.vmId)
    return { vm: row === undefined ? null : this.deps.vms.info(row).summary, resumedAtMs }
  }

  async abort (req: meshvirt.v1.AbortIncoming, source: string): Promise<void> {
    const s = this.sessions.get(req.vmId)
    if (s === undefined || s.session !== req.session || s.source !== source) return
    this.end(req.vmId, s)
    await this.deps.hypervisor.abortIncoming(req.vmId).catch((err: unknown) => {
      this.deps.log.warn('could not remove an aborted incoming VM', { vm: req.vmId, err: (err as Error).message })
    })
    await this.deps.preparation.release(req.vmId)
    this.deps.states.dropIncoming(req.vmId)
    this.deps.log.info('incoming migration aborted', { vm: req.vmId, peer: source, reason: req.reason })
  }

  private session (vmId: string, session: string, source: string): IncomingSession {
    const s = this.sessions.get(vmId)
    if (s === undefined || s.session !== session || s.source !== source) throw new ControlError('NOT_FOUND', `no incoming migration ${session} of ${vmId} from this host`)
    return s
  }

  private end (vmId: string, s: IncomingSession): void {
    clearTimeout(s.timer)
    this.sessions.delete(vmId)
    for (const e of s.exits) void e.close()
  }
}
