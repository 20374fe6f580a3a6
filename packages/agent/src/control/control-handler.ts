import { hostAdvertToWire, type ClusterView } from '@meshvirt/mesh'
import type { meshvirt } from '@meshvirt/proto'
import { ControlError } from './errors.js'

export interface ControlHandlerDeps {
  selfId: string
  view: ClusterView
}

/**
 * Answers control requests. For now: the cluster view (`host ls`, `cluster status`); the VM
 * operations arrive with the lifecycle (create/start/stop/delete/list/inspect).
 */
export function createControlHandler (deps: ControlHandlerDeps): (req: meshvirt.v1.ControlRequest) => Promise<meshvirt.v1.IControlResponse> {
  return async (req) => {
    switch (req.body) {
      case 'listHosts':
        return {
          hostList: {
            selfId: deps.selfId,
            hosts: deps.view.hosts().map((h) => ({ advert: hostAdvertToWire(h.advert), liveness: h.liveness, lastHeardMs: h.lastHeardMs }))
          }
        }
      case undefined:
        throw new ControlError('INVALID_ARGUMENT', 'empty control request: set one operation')
      default:
        throw new ControlError('UNIMPLEMENTED', `${req.body} is not available in this version of the agent`)
    }
  }
}
