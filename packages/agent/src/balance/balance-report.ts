import type { BalanceSetting } from '@meshvirt/mesh'
import { greedyPlan, measure, type BalanceHost } from '@meshvirt/placement'
import { pb, type meshvirt } from '@meshvirt/proto'
import type { BalanceKnobs } from './balance-knobs.js'

const MODE_TO_WIRE: Record<BalanceSetting['mode'], meshvirt.v1.BalanceMode> = {
  off: pb.BalanceMode.BALANCE_MODE_OFF,
  recommend: pb.BalanceMode.BALANCE_MODE_RECOMMEND,
  auto: pb.BalanceMode.BALANCE_MODE_AUTO
}

export function settingToWire (s: BalanceSetting): meshvirt.v1.IBalanceSetting {
  return { mode: MODE_TO_WIRE[s.mode], version: s.version, setBy: s.setBy }
}

export function modeFromWire (m: meshvirt.v1.BalanceMode | null | undefined): BalanceSetting['mode'] | undefined {
  return m === pb.BalanceMode.BALANCE_MODE_OFF ? 'off' : m === pb.BalanceMode.BALANCE_MODE_RECOMMEND ? 'recommend' : m === pb.BalanceMode.BALANCE_MODE_AUTO ? 'auto' : undefined
}

/**
 * `cluster balance` answer: the setting and knobs, each host's utilisation now, and with `dryRun`
 * the greedy plan from this host's view — the moves in order, each one's reason, the spread after.
 */
export function balanceReport (hosts: readonly BalanceHost[], setting: BalanceSetting, knobs: BalanceKnobs, dryRun: boolean): meshvirt.v1.IBalanceReport {
  const now = measure(hosts, knobs.cpuWeight)
  const plan = dryRun ? greedyPlan(hosts, knobs) : undefined
  const after = plan?.after ?? now.utilisation
  const vmsAfter = new Map((plan?.hosts ?? hosts).map((h) => [h.snapshot.id, h.vms.length]))
  return {
    setting: settingToWire(setting),
    moves: (plan?.moves ?? []).map((m) => ({ vmId: m.vmId, vmName: m.vmName, fromHost: m.from, toHost: m.to, reason: m.reason, cvAfter: m.cvAfter })),
    cvBefore: now.cv,
    cvAfter: plan?.cvAfter ?? now.cv,
    mean: now.mean,
    hosts: now.parts.map((h) => ({
      hostId: h.snapshot.id,
      hostname: h.snapshot.hostname ?? '',
      before: now.utilisation.get(h.snapshot.id) ?? 0,
      after: after.get(h.snapshot.id) ?? 0,
      vms: vmsAfter.get(h.snapshot.id) ?? 0
    })),
    threshold: knobs.threshold,
    margin: knobs.margin,
    holdMs: knobs.holdMs,
    cooldownMs: knobs.cooldownMs
  }
}
