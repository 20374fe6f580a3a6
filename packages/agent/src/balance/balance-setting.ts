import type { BalanceMode, BalanceSetting } from '@meshvirt/mesh'

/** Until an operator says otherwise, no host moves VMs on its own (opt-in, as Proxmox's balancer). */
export const DEFAULT_BALANCE_SETTING: Readonly<BalanceSetting> = Object.freeze({ mode: 'off', version: 0, setBy: '' })

export const BALANCE_MODES: readonly BalanceMode[] = ['off', 'recommend', 'auto']

/** Last writer wins: the larger version, then the larger setter id (two hosts set in the same ms). */
export function isNewerSetting (a: BalanceSetting, b: BalanceSetting): boolean {
  return a.version > b.version || (a.version === b.version && a.setBy > b.setBy)
}

/** The setting a host takes on `cluster balance --mode`: newer than anything it has seen, even with a clock behind. */
export function nextSetting (mode: BalanceMode, current: BalanceSetting, selfId: string, nowMs: number): BalanceSetting {
  return { mode, version: Math.max(nowMs, current.version + 1), setBy: selfId }
}
