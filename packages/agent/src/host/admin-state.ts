import type { HostState } from '@meshvirt/mesh'
import type { StateStore } from '../store/state-store.js'

export type AdminState = Extract<HostState, 'active' | 'draining' | 'drained'>
const KEY = 'admin_state'

/**
 * What the operator set this host to: active, draining (maintenance: no new VMs, VMs being moved
 * off) or drained. Persisted, so a host restarted for maintenance stays out of placement.
 */
export class HostAdminState {
  private state: AdminState

  constructor (private readonly store: StateStore, private readonly onChange: () => void = () => {}) {
    const saved = store.getMeta(KEY)
    this.state = saved === 'draining' || saved === 'drained' ? saved : 'active'
  }

  get (): AdminState {
    return this.state
  }

  set (state: AdminState): void {
    if (state === this.state) return
    this.store.setMeta(KEY, state)
    this.state = state
    this.onChange()
  }
}
