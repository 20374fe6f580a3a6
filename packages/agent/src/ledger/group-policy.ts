/**
 * A new VM's group rules as the host checks them at Reserve: the group it joins (carried by its
 * reservation, so a concurrent Reserve sees it), the groups it must share the host with
 * (affinity) and the groups it must not (anti-affinity).
 */
export interface GroupPolicy {
  group: string
  affinity: readonly string[]
  antiAffinity: readonly string[]
}

/** Group → how many of this host's VMs (or unexpired reservations) are in it. */
export type GroupCounts = Readonly<Record<string, number>>

export type GroupDecision =
  | { ok: true }
  | { ok: false, rule: 'anti-affinity' | 'anti-affinity-reserved' | 'affinity', group: string, message: string }

function count (groups: GroupCounts, group: string): number {
  if (!Object.hasOwn(groups, group)) return 0
  const n = groups[group]
  return typeof n === 'number' && n > 0 ? n : 0
}

/**
 * The host's own word on a VM's group rules, pure. The same rules the broker filters with
 * (placement's affinity filters), but against the truth of this host instead of gossip:
 * - anti-affinity counts committed VMs *and* unexpired reservations — two brokers racing to put
 *   members of one group here are serialised by the ledger's transaction, the second refused;
 * - affinity counts committed VMs only — a reservation may still be released, and a VM placed
 *   next to one that never came would be alone (refusing costs the broker one retry).
 */
export function decideGroupPolicy (policy: GroupPolicy, vms: GroupCounts, reserved: GroupCounts): GroupDecision {
  for (const g of policy.antiAffinity) {
    const running = count(vms, g)
    const held = count(reserved, g)
    if (running + held > 0) {
      // Only reservations: they may lapse (a broker that died, a lost answer), so say so.
      if (running === 0) return { ok: false, rule: 'anti-affinity-reserved', group: g, message: `anti-affinity: this host already holds ${held} reservation(s) of group ${g}` }
      return { ok: false, rule: 'anti-affinity', group: g, message: `anti-affinity: this host already holds ${running} VM(s) of group ${g}` }
    }
  }
  for (const g of policy.affinity) {
    if (count(vms, g) === 0) return { ok: false, rule: 'affinity', group: g, message: `affinity: this host runs no VM of group ${g}` }
  }
  return { ok: true }
}

/** True when the policy asks the host anything (a plain VM with no group rules skips the check). */
export function hasGroupRules (policy: GroupPolicy | undefined): policy is GroupPolicy {
  return policy !== undefined && (policy.affinity.length > 0 || policy.antiAffinity.length > 0 || policy.group !== '')
}
