import type { meshvirt } from '@meshvirt/proto'
import type { HostAdminState } from '../host/admin-state.js'
import type { Logger } from '../log/logger.js'
import { Semaphore } from '../util/semaphore.js'
import type { VmManager } from '../vm/vm-manager.js'
import type { MigrationSource } from './migration-source.js'
import { notMigratableReason } from './migratable.js'

/** VMs moved at once by a drain: each migration is CPU- and link-heavy on the source. */
export const DEFAULT_DRAIN_CONCURRENCY = 2
export const MAX_DRAIN_CONCURRENCY = 16

/**
 * Maintenance mode (vSphere's "enter maintenance mode"): mark the host draining — placement
 * stops choosing it and its ledger refuses reservations — then migrate every VM off it (running
 * ones live, stopped ones cold), a few at a time, each to where placement chooses. Drained once
 * nothing is left.
 */
export async function drainHost (deps: { admin: HostAdminState, vms: VmManager, migrations: MigrationSource, log: Logger },
  opts: { concurrency?: number, params?: meshvirt.v1.IMigrationParams | null } = {}): Promise<meshvirt.v1.DrainReport.IMoved[]> {
  deps.admin.set('draining')
  const slots = new Semaphore(Math.min(Math.max(opts.concurrency ?? DEFAULT_DRAIN_CONCURRENCY, 1), MAX_DRAIN_CONCURRENCY))
  const moved = await Promise.all(deps.vms.list().map(async (vm): Promise<meshvirt.v1.DrainReport.IMoved> => {
    const pinned = notMigratableReason(vm)
    if (pinned !== undefined) return { vmId: vm.id, name: vm.name, error: `stays: ${pinned}; stop or delete it before maintenance` }
    if (vm.state !== 'running' && vm.state !== 'stopped') {
      return { vmId: vm.id, name: vm.name, error: `not moved: it is ${vm.state}; a running VM migrates live, a stopped one cold: start, stop or delete it` }
    }
    return await slots.run(async () => {
      try {
        const { record, destination } = await deps.migrations.migrate(vm.id, '', opts.params)
        return { vmId: vm.id, name: vm.name, toHost: destination, downtimeMs: Number(record.downtimeMs ?? 0) }
      } catch (err) {
        return { vmId: vm.id, name: vm.name, error: (err as Error).message }
      }
    })
  }))
  if (deps.vms.list().length === 0) deps.admin.set('drained')
  deps.log.info('host drain finished', { moved: moved.filter((m) => m.error == null || m.error === '').length, left: deps.vms.list().length })
  return moved
}
