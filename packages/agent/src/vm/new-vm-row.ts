import type { Resources } from '@meshvirt/placement'
import { pb, type meshvirt } from '@meshvirt/proto'
import type { VmSpec } from './vm-spec-codec.js'
import type { VmRow, VmRunState } from '../store/state-store.js'

/** The row a host writes when a VM becomes its own (commit) or starts arriving (incoming migration). */
export function newVmRow (input: {
  id: string
  spec: VmSpec
  placement?: meshvirt.v1.IPlacementExplanation | null
  owner: string
  epoch: number
  state: VmRunState
  resources: Resources
  idempotencyKey: string | null
  now: number
}): VmRow {
  return {
    id: input.id,
    name: input.spec.name,
    group: input.spec.group,
    spec: input.spec,
    placement: input.placement == null ? null : pb.PlacementExplanation.encode(input.placement).finish(),
    owner: input.owner,
    epoch: input.epoch,
    state: input.state,
    desired: 'running',
    resources: input.resources,
    idempotencyKey: input.idempotencyKey,
    createdAt: input.now,
    updatedAt: input.now,
    startedAt: null,
    lastError: null,
    lastMigration: null
  }
}
