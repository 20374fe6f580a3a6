import { nameAuthorities } from '../negotiate/name-authority.js'

/**
 * How many hosts decide a cluster-wide key (a network's name, a VXLAN id, an address): the first
 * three in the key's rendezvous order among every host the view knows — dead or alive, so two
 * brokers whose views disagree about who is alive still ask the same three — and a claim holds
 * when a majority of them grant it. Any two majorities of one set meet at a host, which answers
 * one of the two claimants "taken": two VMs never hold one address. The price: a key whose
 * deciders are mostly dead cannot be claimed until the dead leave the view (its retention).
 */
export const CLAIM_AUTHORITIES = 3

/** A majority of `n` deciders. */
export const majorityOf = (n: number): number => Math.floor(n / 2) + 1

/** The hosts that decide `key`, in rendezvous order. */
export function keyAuthorities (key: string, view: { hosts: () => ReadonlyArray<{ hostId: string }> }): string[] {
  return nameAuthorities(key, view.hosts().map((h) => h.hostId)).slice(0, CLAIM_AUTHORITIES)
}

/** One decider's answer to a claim. */
export type Vote =
  | { kind: 'granted' }
  /** It holds the key for another holder (a VM id, a network id). */
  | { kind: 'taken', holder: string }
  /** It did not answer (dead in this host's view, or silent): why. */
  | { kind: 'silent', why: string }

export type Tally =
  | { outcome: 'granted' }
  /**
   * `contended`: no holder has a majority either (claimants racing split the votes); each gives
   * back what it got, so the key may well be free a moment later.
   */
  | { outcome: 'taken', holder: string, contended: boolean }
  /** Neither a majority of grants nor anyone else's claim: too few deciders answered. */
  | { outcome: 'unavailable', answered: number, needed: number }

/**
 * What the votes of a key's deciders come to. Granted needs a majority; otherwise the key is
 * another's when any decider says so (named by the most votes: a three-way race leaves each
 * claimant with one grant, and all three move on), and unavailable when too few answered.
 */
export function tally (votes: readonly Vote[]): Tally {
  const needed = majorityOf(votes.length)
  const granted = votes.filter((v) => v.kind === 'granted').length
  if (votes.length > 0 && granted >= needed) return { outcome: 'granted' }
  const holders = new Map<string, number>()
  for (const v of votes) if (v.kind === 'taken') holders.set(v.holder, (holders.get(v.holder) ?? 0) + 1)
  const top = [...holders.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]
  if (top !== undefined) return { outcome: 'taken', holder: top[0], contended: top[1] < needed }
  return { outcome: 'unavailable', answered: votes.filter((v) => v.kind !== 'silent').length, needed }
}
