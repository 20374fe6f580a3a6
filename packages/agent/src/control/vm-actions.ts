import type { ClusterView } from '@meshvirt/mesh'
import type { meshvirt } from '@meshvirt/proto'
import type { Logger } from '../log/logger.js'
import { assertMigratable } from '../migrate/migratable.js'
import type { MigrationSource } from '../migrate/migration-source.js'
import { claimHolders } from '../negotiate/name-authority.js'
import type { PeerClient } from '../negotiate/peer-client.js'
import type { ReplicationManager } from '../replication/replication-manager.js'
import type { VmRow, VmRunState } from '../store/state-store.js'
import type { VmManager } from '../vm/vm-manager.js'
import { LEGAL } from '../vm/vm-state.js'
import type { VmAction } from './control-action.js'
import { ControlError } from './errors.js'
import { freeCapacity } from '@meshvirt/placement'
import { nextSize, type SizeRequest } from '../vm/vm-resize.js'

/** What the actions on a VM act through, on its owner. */
export interface VmActionContext {
  vms: VmManager
  view: ClusterView
  peers: PeerClient
  log: Logger
  /** Absent when this host's hypervisor cannot live-migrate. */
  migrations?: MigrationSource
  /** Absent when this host's hypervisor cannot replicate disks. */
  replication?: ReplicationManager
  /** A migration's destination as the operator named it ('' = placement chooses); never this host. */
  destination: (name: string) => string
  /** After a VM is deleted here: what other parts free for it cluster-wide (its NICs' addresses). */
  onDeleted?: (vm: VmRow) => Promise<void>
}

type Op = VmAction['op']

interface VmActionSpec<K extends Op> {
  /**
   * The VM states the action is legal in, checked before it runs (the VM manager checks again under
   * the VM's lock); `unless` admits a VM outside them. Absent: legal in every state.
   */
  legal?: { states: readonly VmRunState[], unless?: (vm: VmRow) => boolean, why?: string }
  run: (vm: VmRow, action: Extract<VmAction, { op: K }>, ctx: VmActionContext) => Promise<meshvirt.v1.IControlResponse>
}

/** Every action on a VM: where it is legal, and what it does on the owner. */
export const VM_ACTIONS: { readonly [K in Op]: VmActionSpec<K> } = {
  start: {
    // A VM already on its way up (desired running) may be asked again: the answer waits for it.
    legal: { states: LEGAL.start, unless: (vm) => vm.desired === 'running' },
    run: async (vm, _, { vms }) => ({ vm: vms.info(await vms.start(vm.id)) })
  },
  stop: {
    legal: { states: LEGAL.stop },
    run: async (vm, a, { vms }) => ({ vm: vms.info(await vms.stop(vm.id, a.force)) })
  },
  delete: {
    legal: { states: LEGAL.delete },
    run: async (vm, _, ctx) => await deleteVm(vm, ctx)
  },
  inspect: {
    run: async (vm, _, { vms }) => ({ vm: vms.info(vm) })
  },
  readConsole: {
    run: async (vm, a, { vms }) => {
      const chunk = await vms.readConsole(vm.id, a.offset, a.maxBytes)
      return { consoleChunk: { data: chunk.data, nextOffset: chunk.nextOffset, vmId: vm.id, state: vm.state } }
    }
  },
  migrate: {
    legal: { states: ['running', 'stopped'], why: ' (a running VM migrates live, a stopped one cold)' },
    run: async (vm, a, { migrations, peers, destination }) => {
      if (migrations === undefined) throw new ControlError('UNIMPLEMENTED', 'this host\'s hypervisor cannot live-migrate')
      const { destination: to } = await migrations.migrate(vm.id, destination(a.toHost), a.params)
      return await peers.control(to, { hops: 1, inspectVm: { vm: { id: vm.id } } })
    }
  },
  resize: {
    legal: { states: LEGAL.resize, why: ' (a VM is resized running or stopped)' },
    run: async (vm, a, ctx) => {
      try {
        return { vm: ctx.vms.info(await ctx.vms.resize(vm.id, a.size, a.restart)) }
      } catch (err) {
        throw (err as { code?: string }).code === 'NO_CAPACITY' ? withRoomElsewhere(err as ControlError, vm, a.size, ctx) : err
      }
    }
  },
  replicate: {
    run: async (vm, a, { replication, vms }) => {
      if (replication === undefined) throw new ControlError('UNIMPLEMENTED', 'this host\'s hypervisor cannot replicate disks')
      return { vm: vms.info(vms.setReplication(vm.id, { replicas: a.replicas, rpoMs: a.rpoMs, spreadBy: a.spreadBy })) }
    }
  }
}

/** Runs an action on a VM this host owns, once its state allows it. */
export async function runVmAction (vm: VmRow, action: VmAction, ctx: VmActionContext): Promise<meshvirt.v1.IControlResponse> {
  const spec = VM_ACTIONS[action.op] as VmActionSpec<Op>
  const legal = spec.legal
  // Not migratable is what the operator must hear first, whatever the VM's state.
  if (action.op === 'migrate') assertMigratable(vm)
  if (legal !== undefined && !legal.states.includes(vm.state) && legal.unless?.(vm) !== true) {
    throw new ControlError('WRONG_STATE', `cannot ${action.op} VM ${vm.name}: it is ${vm.state}${legal.why ?? ''}`)
  }
  return await spec.run(vm, action as never, ctx)
}

async function deleteVm (vm: VmRow, ctx: VmActionContext): Promise<meshvirt.v1.IControlResponse> {
  const { vms, peers, view, log } = ctx
  const info = vms.info(vm)
  const replicas = ctx.replication?.forget(vm)
  try {
    await vms.delete(vm.id)
  } catch (err) {
    replicas?.cancel()
    throw err
  }
  await replicas?.commit()
  // Free the name where it may be held: the authority, and its successor in case membership moved
  // since the claim (a release where nothing is held is a no-op).
  await Promise.all(claimHolders(vm.name, view).map(async (authority) => {
    await peers.negotiate(authority, { bindName: { name: vm.name, vmId: vm.id, release: true } }).catch((err: unknown) => {
      log.warn('could not release the VM name at an authority', { vm: vm.id, authority, err: (err as Error).message })
    })
  }))
  await ctx.onDeleted?.(vm)
  return { vm: info }
}

/**
 * A refused growth, with the hosts where the VM at its new size would fit (from their gossiped
 * capacity: a hint; `vm migrate VM --to HOST`, then resize there).
 */
function withRoomElsewhere (err: ControlError, vm: VmRow, size: SizeRequest, ctx: VmActionContext): ControlError {
  const want = nextSize(vm.resources, size)
  const fits = ctx.view.hosts()
    .filter((h) => h.liveness === 'alive' && h.hostId !== vm.owner)
    .filter((h) => { const free = freeCapacity(h.advert.capacity); return free.vcpus >= want.vcpus && free.memoryBytes >= want.memoryBytes && free.diskBytes >= want.diskBytes })
    .map((h) => h.advert.hostname !== '' ? h.advert.hostname : h.hostId.slice(-12))
  const where = fits.length > 0
    ? ` It would fit on ${fits.slice(0, 5).join(', ')}: meshvirt vm migrate ${vm.name} --to ${fits[0] as string}, then resize it there.`
    : ' No other host has room for it either.'
  return new ControlError(err.code, err.message.replace(/\.?$/, '.') + where, { ...err.details, fitsOn: fits.join(',') })
}
