import type { ClusterView, HostAdvertContent } from '@meshvirt/mesh'
import type { HostNetwork, NetworkPeers } from '@meshvirt/network'
import type { meshvirt } from '@meshvirt/proto'
import { ControlError } from '../control/errors.js'
import type { Logger } from '../log/logger.js'
import type { PeerClient } from '../negotiate/peer-client.js'
import type { VmRow } from '../store/state-store.js'
import type { NetworkStore } from '../store/network-store.js'
import { ClusterClaims } from './cluster-claims.js'
import { peersFor } from './forwarding.js'
import { NetworkAdmin } from './network-admin.js'
import { NetworkBook } from './network-book.js'
import { NetworkPorts } from './network-ports.js'
import { networkConfig, networkToWire, type NetworkRecord } from './network-record.js'
import { NicAddressing } from './nic-addresses.js'
import { compareText } from '../util/compare-text.js'

type Handler = (req: meshvirt.v1.ControlRequest) => Promise<meshvirt.v1.IControlResponse>

export interface NetworksDeps {
  host: HostNetwork
  store: NetworkStore
  /** Where other hosts send this host's overlay traffic. */
  underlay: string
  underlayMtu: number
  /** This host's VM rows (their NICs, and the epochs that say which copy of a moving VM is current). */
  localVms: () => VmRow[]
  /** The advert should be published again (the book changed). */
  readvertise: () => void
  log: Logger
  /** How long after start forwarding is only added to (default VIEW_SETTLE_MS). */
  settleMs?: number
}

/** Long enough for a restarted agent to hear every live host's advert (a few heartbeats and gossip rounds). */
export const VIEW_SETTLE_MS = 5_000

/**
 * The networks component: the cluster's networks (the book, merged from gossip), this host's ports
 * (a VM resource), forwarding programmed from what every host gossips, and `net` commands. Built
 * before the mesh (the ports are restored when guests are re-attached), attached to it after.
 */
export class Networks {
  readonly book: NetworkBook
  readonly ports: NetworkPorts
  private view: ClusterView | undefined
  private admin: NetworkAdmin | undefined
  addressing: NicAddressing | undefined
  private unsubscribe: (() => void) | undefined
  private syncQueued = false
  private stopped = false
  /** What was last programmed per network (forwarding is applied as a diff, but asked only on change). */
  private readonly applied = new Map<string, string>()
  /** The tunnel peers last set (space-joined); undefined: not set yet. */
  private tunnelPeers: string | undefined
  /**
   * Until the view has settled after start, forwarding is only added to, never pruned: a host not
   * heard from yet is not gone, and the kernel keeps forwarding to its guests meanwhile.
   */
  private prune = false
  private settle: NodeJS.Timeout | undefined

  constructor (private readonly deps: NetworksDeps) {
    this.book = new NetworkBook(deps.store, (changed) => { this.onBookChange(changed) })
    this.ports = new NetworkPorts({ host: deps.host, book: this.book, log: deps.log, changed: () => { this.scheduleSync() }, removed: (network) => { this.applied.delete(network) } })
  }

  /** Follows the mesh: every advert's networks are merged, and forwarding follows every NIC's host. */
  attach (view: ClusterView, peers: PeerClient, selfId: string): void {
    this.view = view
    const claims = new ClusterClaims({ selfId, view, peers, log: this.deps.log })
    this.addressing = new NicAddressing({ book: this.book, claims, view })
    this.admin = new NetworkAdmin({ book: this.book, claims, usersOf: (name) => this.usersOf(name), underlayMtu: this.deps.underlayMtu, log: this.deps.log })
    for (const h of view.hosts()) if (!h.self) this.book.merge(h.advert.networks)
    this.unsubscribe = view.subscribe((e) => {
      if (!e.host.self && e.type !== 'removed') this.book.merge(e.host.advert.networks)
      this.scheduleSync()
    })
    this.settle = setTimeout(() => {
      this.prune = true
      this.applied.clear()
      this.scheduleSync()
    }, this.deps.settleMs ?? VIEW_SETTLE_MS)
    this.settle.unref()
    this.scheduleSync()
  }

  /** This host's part of its advert. */
  advert (): Pick<HostAdvertContent, 'underlay' | 'networks'> {
    return { underlay: this.deps.underlay, networks: this.book.all() }
  }

  handlers (): Record<string, Handler> {
    return {
      createNetwork: async (req) => {
        const { network } = await this.requireAdmin().create(req.createNetwork ?? {}, req.idempotencyKey !== '' ? req.idempotencyKey : req.requestId)
        return { network: this.info(network) }
      },
      deleteNetwork: async (req) => ({ network: { network: networkToWire(await this.requireAdmin().delete(req.deleteNetwork?.name ?? '')) } }),
      listNetworks: async () => ({ networkList: { networks: this.book.live().map((n) => this.info(n)) } }),
      inspectNetwork: async (req) => {
        const name = req.inspectNetwork?.name ?? ''
        const n = this.book.get(name)
        if (n === undefined) throw new ControlError('NOT_FOUND', `no network named ${name} (meshvirt net ls lists them)`)
        return { network: this.info(n) }
      }
    }
  }

  /** For claim keys `ip:NETWORK-ID:ADDR`: the VM the gossip says uses the address, if any. */
  addressUser (key: string): string | undefined {
    const m = /^ip:([^:]+):(.+)$/.exec(key)
    if (m === null || this.view === undefined) return undefined
    const network = this.book.live().find((n) => n.id === m[1])
    if (network === undefined) return undefined
    // Dead hosts too: their VMs still exist (listed as unknown, or about to fail over).
    for (const h of this.view.hosts()) {
      for (const vm of h.advert.vms) if (vm.nics.some((n) => n.network === network.name && n.ip === m[2])) return vm.id
    }
    for (const vm of this.deps.localVms()) {
      if (vm.spec.nics.some((n) => n.network === network.name && n.ip === m[2])) return vm.id
    }
    return undefined
  }

  /** A VM was deleted: its NICs' addresses are free again, cluster-wide. */
  async releaseAddresses (vm: Pick<VmRow, 'id' | 'spec'>): Promise<void> {
    const nics = vm.spec.nics
    if (nics.length === 0 || this.addressing === undefined) return
    await this.addressing.release(this.addressing.claimsOf(vm.id, nics))
  }

  /**
   * A VM deleted by force (its owner dead): its NICs' addresses, as its owner last gossiped them, are
   * released. Authorities still refuse them while that owner's advert lists the VM (until the dead
   * host leaves the view): never reused under a guest that may come back.
   */
  async releaseGossipedAddresses (vmId: string): Promise<void> {
    if (this.addressing === undefined || this.view === undefined) return
    for (const h of this.view.hosts()) {
      const vm = h.advert.vms.find((v) => v.id === vmId && v.role === 'owner')
      if (vm !== undefined) {
        await this.addressing.release(this.addressing.claimsOf(vmId, vm.nics))
        return
      }
    }
  }

  stop (): void {
    this.stopped = true
    clearTimeout(this.settle)
    this.unsubscribe?.()
  }

  /** The network and its ports, cluster-wide as this host sees them. */
  private info (n: NetworkRecord): meshvirt.v1.INetworkInfo {
    const ports: meshvirt.v1.INetworkPort[] = []
    for (const h of this.view?.hosts() ?? []) {
      if (h.liveness === 'dead') continue
      for (const vm of h.advert.vms) {
        if (vm.role !== 'owner') continue
        for (const nic of vm.nics) if (nic.network === n.name) ports.push({ vmId: vm.id, vmName: vm.name, ip: nic.ip, mac: nic.mac, hostId: h.hostId, hostname: h.advert.hostname })
      }
    }
    ports.sort((a, b) => compareText(a.vmName ?? '', b.vmName ?? ''))
    return { network: networkToWire(n), ports }
  }

  private usersOf (network: string): string[] {
    const users = new Set<string>()
    for (const vm of this.deps.localVms()) {
      if (vm.spec.nics.some((nic) => nic.network === network)) users.add(vm.name)
    }
    for (const h of this.view?.hosts() ?? []) {
      if (h.liveness === 'dead') continue
      for (const vm of h.advert.vms) if (vm.nics.some((nic) => nic.network === network)) users.add(vm.name)
    }
    return [...users].sort()
  }

  private requireAdmin (): NetworkAdmin {
    if (this.admin === undefined) throw new ControlError('UNAVAILABLE', 'the agent is still starting')
    return this.admin
  }

  private onBookChange (changed: NetworkRecord[]): void {
    this.deps.readvertise()
    // A network this host has ports on whose definition changed (a conflicting creation lost): rebuild it.
    for (const n of changed) {
      if (this.ports.portsOn(n.name) === 0 || n.deletedAtMs !== 0) continue
      this.applied.delete(n.name)
      void this.ports.serial(async () => { await this.deps.host.ensureNetwork(networkConfig(n)) }).catch((err: unknown) => {
        this.deps.log.warn('could not rebuild a network whose definition changed', { network: n.name, err: (err as Error).message })
      })
    }
    this.scheduleSync()
  }

  /** Programs forwarding once per event-loop turn, however many adverts arrived in it. */
  private scheduleSync (): void {
    if (this.syncQueued || this.stopped || this.view === undefined) return
    this.syncQueued = true
    setImmediate(() => {
      this.syncQueued = false
      void this.sync()
    })
  }

  /**
   * VXLAN is accepted only from the cluster's hosts (dead ones too: the kernel still forwards to
   * their guests), once the view has settled — until then from anywhere, as before the restart.
   */
  private async syncTunnelPeers (hosts: ReadonlyArray<{ self: boolean, advert: { underlay: string } }>): Promise<void> {
    if (!this.prune) return
    const peers = [...new Set(hosts.filter((h) => !h.self && h.advert.underlay !== '').map((h) => h.advert.underlay))].sort()
    const key = peers.join(' ')
    if (key === this.tunnelPeers) return
    this.tunnelPeers = key
    try {
      await this.ports.serial(async () => { await this.deps.host.setTunnelPeers(peers) })
    } catch (err) {
      this.tunnelPeers = undefined
      this.deps.log.warn('could not limit VXLAN to the cluster\'s hosts', { err: (err as Error).message })
    }
  }

  private async sync (): Promise<void> {
    const view = this.view
    if (view === undefined || this.stopped) return
    const local = new Map<string, number>()
    for (const vm of this.deps.localVms()) if (vm.state !== 'incoming') local.set(vm.id, vm.epoch)
    const hosts = view.hosts()
    await this.syncTunnelPeers(hosts)
    for (const network of this.ports.networks()) {
      const peers: NetworkPeers = peersFor(network, hosts, local)
      const key = JSON.stringify(peers)
      if (this.applied.get(network) === key) continue
      this.applied.set(network, key)
      try {
        await this.ports.serial(async () => { await this.deps.host.setPeers(network, peers, { prune: this.prune }) })
      } catch (err) {
        this.applied.delete(network)
        this.deps.log.warn('could not program forwarding for a network', { network, err: (err as Error).message })
      }
    }
    for (const network of [...this.applied.keys()]) if (this.ports.portsOn(network) === 0) this.applied.delete(network)
  }
}
