import type { VmSummary } from '@meshvirt/mesh'
import { pb, type meshvirt } from '@meshvirt/proto'
import type { VmRow } from '../store/state-store.js'
import type { VmDetails } from './vm-details.js'
import { vmSpecToWire } from './vm-spec-codec.js'
import { vmStateToWire } from './vm-state.js'

/** How a VM this host owns is shown: in its gossip advert (summaries) and to `vm show` (info). */
export class VmSummaries {
  constructor (private readonly details: Pick<VmDetails, 'of'>) {}

  summary (vm: VmRow): VmSummary {
    return {
      id: vm.id,
      name: vm.name,
      epoch: vm.epoch,
      role: 'owner',
      state: vm.state === 'failed' ? 'crashed' : vm.state === 'incoming' ? 'migrating' : vm.state,
      resources: vm.resources,
      owner: vm.owner,
      group: vm.group,
      // A guest still arriving is gossiped without NICs: hosts forward to it once it runs here.
      nics: vm.state === 'incoming' ? [] : vm.spec.nics
    }
  }

  info (vm: VmRow): meshvirt.v1.IVmInfo {
    return {
      summary: { id: vm.id, name: vm.name, epoch: vm.epoch, role: pb.VmRole.VM_ROLE_OWNER, state: vmStateToWire(vm.state), resources: vm.resources, owner: vm.owner, group: vm.spec.group },
      spec: vmSpecToWire(vm.spec),
      placement: vm.placement === null ? null : pb.PlacementExplanation.decode(vm.placement),
      createdAtMs: vm.createdAt,
      updatedAtMs: vm.updatedAt,
      startedAtMs: vm.startedAt ?? 0,
      lastError: vm.lastError ?? '',
      lastMigration: vm.lastMigration === null ? null : pb.MigrationRecord.decode(vm.lastMigration),
      migration: null,
      ...this.details.of(vm)
    }
  }
}
