import type { VmSpec as DriverSpec, NicSpec } from '@meshvirt/hypervisor'
import type { HostNetwork, PortConfig } from '@meshvirt/network'
import type { VmSpec } from '../vm/vm-spec-codec.js'
import type { Logger } from '../log/logger.js'
import type { PreparingVm, VmResource } from '../vm/vm-preparation.js'
import type { NetworkBook } from './network-book.js'
import { networkConfig } from './network-record.js'

/**
 * The NICs of the VMs on this host: before a guest exists here (create, incoming migration,
 * promotion) its networks are built on this host (bridge, VXLAN, DHCP) and a tap per NIC is attached;
 * when the guest is gone they are detached, and a network's devices go with its last port.
 * Every change to the host's devices runs through one queue (`serial`), in order.
 */
export class NetworkPorts implements VmResource {
  readonly name = 'network'
  private readonly ports = new Map<string, PortConfig[]>()
  private chain: Promise<unknown> = Promise.resolve()

  constructor (private readonly deps: {
    host: HostNetwork
    book: NetworkBook
    log: Logger
    changed: () => void
    /** A network left this host (its last port went): what was programmed for it is gone with it. */
    removed?: (network: string) => void
  }) {}

  async prepare (vm: PreparingVm, driver: DriverSpec): Promise<DriverSpec> {
    const nics = await this.attach(vm.id, vm.spec)
    return nics.length === 0 ? driver : { ...driver, nics }
  }

  /** A guest that runs here since before this agent started: re-adopt its ports (nothing is recreated that exists). */
  async restore (vm: { id: string, spec: VmSpec }): Promise<void> {
    await this.attach(vm.id, vm.spec)
  }

  async release (vmId: string): Promise<void> {
    const ports = this.ports.get(vmId)
    if (ports === undefined) return
    this.ports.delete(vmId)
    for (const p of ports) await this.serial(async () => { await this.deps.host.detachPort(p.network, p.vmId, p.nicIndex) })
    for (const network of new Set(ports.map((p) => p.network))) {
      if (this.portsOn(network) === 0) {
        await this.serial(async () => { await this.deps.host.removeNetwork(network) })
        this.deps.removed?.(network)
        this.deps.log.info('network removed from this host: its last port left', { network })
      }
    }
    this.deps.changed()
  }

  /** Networks with at least one port here, by name. */
  networks (): string[] {
    return [...new Set([...this.ports.values()].flat().map((p) => p.network))].sort()
  }

  portsOn (network: string): number {
    let n = 0
    for (const ps of this.ports.values()) n += ps.filter((p) => p.network === network).length
    return n
  }

  /** Runs a change to the host's devices after those queued before it. */
  async serial<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn)
    this.chain = run.catch(() => {})
    return await run
  }

  private async attach (vmId: string, spec: VmSpec): Promise<NicSpec[]> {
    const asked = spec.nics
    if (asked.length === 0) return []
    const made: PortConfig[] = []
    const nics: NicSpec[] = []
    try {
      for (const [i, nic] of asked.entries()) {
        const network = this.deps.book.get(nic.network)
        if (network === undefined) throw new Error(`network ${nic.network} is not known on this host (deleted, or not yet heard of)`)
        const port: PortConfig = { network: network.name, vmId, nicIndex: i, mac: nic.mac, ip: nic.ip, hostname: spec.name }
        await this.serial(async () => { await this.deps.host.ensureNetwork(networkConfig(network)) })
        const { tap } = await this.serial(async () => await this.deps.host.attachPort(port))
        made.push(port)
        nics.push({ mac: port.mac, tap })
      }
    } catch (err) {
      // Nothing half made: the ports attached so far go, and a network this VM alone brought here.
      for (const p of made) await this.serial(async () => { await this.deps.host.detachPort(p.network, p.vmId, p.nicIndex) }).catch(() => {})
      for (const nic of asked) {
        const name = nic.network
        if (this.portsOn(name) === 0) {
          await this.serial(async () => { await this.deps.host.removeNetwork(name) }).catch(() => {})
          this.deps.removed?.(name)
        }
      }
      throw err
    }
    this.ports.set(vmId, made)
    this.deps.changed()
    return nics
  }
}
