import type { meshvirt } from '@meshvirt/proto'
import type { VmRecords } from './vm-records.js'

type Handler = (req: meshvirt.v1.ControlRequest) => Promise<meshvirt.v1.IControlResponse>

/**
 * The control API with the VM records composed around it (the handler itself is unchanged): a
 * cluster-wide `vm ls` adds the VMs whose owner is dead or gone as unknown, `vm show` of such a VM
 * answers from the records, `vm delete --force` falls back to a tombstone when no owner deletes it,
 * and hosts exchange tombstones (`syncTombstones`).
 */
export function withVmRecords (handler: Handler, records: Pick<VmRecords, 'unknownInfos' | 'findUnknown' | 'forceDelete' | 'handleSync'>): Handler {
  return async (req) => {
    switch (req.body) {
      case 'syncTombstones':
        return await records.handleSync(req)
      case 'listVms': {
        const res = await handler(req)
        if (req.listVms?.localOnly === true || res.vmList == null) return res
        const listed = res.vmList.vms ?? []
        const all = [...listed, ...records.unknownInfos(listed)].sort((a, b) => (a.summary?.name ?? '').localeCompare(b.summary?.name ?? ''))
        return { ...res, vmList: { vms: all } }
      }
      case 'inspectVm':
        return await handler(req).catch((err: unknown) => {
          const unknown = (err as { code?: string }).code === 'NOT_FOUND' && req.hops === 0 ? records.findUnknown(req.inspectVm?.vm ?? {}) : undefined
          if (unknown === undefined) throw err
          return { vm: unknown }
        })
      case 'deleteVm': {
        const d = req.deleteVm
        if (d?.force !== true || req.hops > 0) return await handler(req)
        return await records.forceDelete(d.vm ?? {}, async () => await handler(req))
      }
      default:
        return await handler(req)
    }
  }
}
