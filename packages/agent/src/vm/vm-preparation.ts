import type { VmSpec as DriverSpec } from '@meshvirt/hypervisor'
import type { Logger } from '../log/logger.js'
import { driverSpec } from './vm-spec.js'
import type { VmSpec } from './vm-spec-codec.js'

/**
 * How a VM comes to exist on this host. Each origin brings the VM's disks differently; every other
 * per-VM resource (a NIC on a network, a fetched image, a cloud-init seed) is the same for all three.
 */
export type VmOrigin =
  /** Committed here: new disks, blank or over the spec's base image. */
  | { kind: 'create' }
  /** A live migration arriving: the disks are created empty and mirrored from the source. */
  | { kind: 'incoming' }
  /** A replica promoted by failover: the disk is imported from the replica's last point. */
  | { kind: 'promotion', replicaDisk: string }

export interface PreparingVm {
  id: string
  spec: VmSpec
  origin: VmOrigin
}

/**
 * A resource a VM needs on the host that runs it. `prepare` makes it ready and returns the driver
 * spec with it added; it runs again when a failed start is retried, so it is idempotent per VM id.
 * A `prepare` that throws leaves nothing of its own behind. `release` undoes it once the guest is
 * gone, and tolerates a VM it never prepared.
 */
export interface VmResource {
  readonly name: string
  prepare: (vm: PreparingVm, driver: DriverSpec) => Promise<DriverSpec> | DriverSpec
  release: (vmId: string) => Promise<void> | void
  /**
   * The agent restarted (or the host rebooted) with the VM on this host: make the resource ready
   * again, adopting what still exists without disturbing a running guest. Optional.
   */
  restore?: (vm: { id: string, spec: VmSpec }) => Promise<void> | void
}

export class VmPrepareError extends Error {
  constructor (readonly resource: string, cause: unknown) {
    super(`${resource}: ${(cause as Error).message ?? String(cause)}`, { cause })
    this.name = 'VmPrepareError'
    const code = (cause as { code?: unknown }).code
    // A driver's typed error (a missing image) stays what it was for the layers above.
    if (typeof code === 'string') (this as { code?: string }).code = code
  }
}

/**
 * The one way a VM comes to exist on a host: create, an incoming migration and a replica promotion
 * all get their driver spec here, after every per-VM resource is ready. A resource is added to the
 * list once, not to three paths. Disks come first (they depend on the origin); the rest follow in
 * the order given, and are released in reverse.
 */
export class VmPreparation {
  private readonly resources: VmResource[]

  constructor (private readonly deps: { resources?: VmResource[], log: Logger }) {
    this.resources = [disks, ...deps.resources ?? []]
  }

  /** The names of the resources, in the order they are prepared. */
  names (): string[] {
    return this.resources.map((r) => r.name)
  }

  /**
   * The driver spec for the VM, with every resource prepared. If one fails, those already prepared
   * are released (in reverse) before the error — naming the resource — is thrown: nothing is left half made.
   */
  async prepare (id: string, spec: VmSpec, origin: VmOrigin): Promise<DriverSpec> {
    const vm: PreparingVm = { id, spec, origin }
    let driver = driverSpec(id, spec)
    const done: VmResource[] = []
    for (const r of this.resources) {
      try {
        driver = await r.prepare(vm, driver)
        done.push(r)
      } catch (err) {
        await this.releaseAll(id, done)
        throw new VmPrepareError(r.name, err)
      }
    }
    return driver
  }

  /**
   * A VM this host had before the agent (re)started: each resource that can restores itself.
   * Failures are logged, not thrown: a guest that runs keeps running, whatever one resource lacks.
   */
  async restore (id: string, spec: VmSpec): Promise<void> {
    for (const r of this.resources) {
      if (r.restore === undefined) continue
      try {
        await r.restore({ id, spec })
      } catch (err) {
        this.deps.log.warn('could not restore a VM resource after a restart', { vm: id, resource: r.name, err: (err as Error).message })
      }
    }
  }

  /** The guest is gone (deleted, migrated away, never arrived): release what `prepare` made, in reverse. */
  async release (id: string): Promise<void> {
    await this.releaseAll(id, this.resources)
  }

  private async releaseAll (id: string, resources: VmResource[]): Promise<void> {
    for (const r of [...resources].reverse()) {
      try {
        await r.release(id)
      } catch (err) {
        // A release that fails leaves a resource behind, never a VM: say so and go on with the rest.
        this.deps.log.warn('could not release a VM resource', { vm: id, resource: r.name, err: (err as Error).message })
      }
    }
  }
}

/**
 * The VM's disks: the driver creates them (and removes them with the guest); the origin says from
 * what. A promotion's disk `vda` is imported from the replica, so the VM runs from its last point.
 */
const disks: VmResource = {
  name: 'disks',
  prepare: (vm, driver) => {
    if (vm.origin.kind !== 'promotion' || driver.disks === undefined || driver.disks.length === 0) return driver
    const from = vm.origin.replicaDisk
    return { ...driver, disks: driver.disks.map((d) => ({ name: d.name, sizeMiB: d.sizeMiB, importFrom: from })) }
  },
  release: () => {}
}
