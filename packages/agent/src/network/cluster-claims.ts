import type { ClusterView } from '@meshvirt/mesh'
import { pb } from '@meshvirt/proto'
import { ControlError } from '../control/errors.js'
import type { Logger } from '../log/logger.js'
import type { PeerClient } from '../negotiate/peer-client.js'
import { keyAuthorities, majorityOf, tally, type Vote } from './claim-quorum.js'

/**
 * A claim not bound within this is freed by its authorities (the claimant died mid-way). Long (the
 * authorities' maximum): an address is claimed before placement, which may take tens of seconds
 * under load; and a lapsed claim of an address in use is refused anyway (NameClaims' `inUse`).
 */
export const CLAIM_TTL_MS = 120_000
/** A decider that does not answer is asked again this many times in all (a busy host times out). */
const TRIES = 3
const RETRY_PAUSE_MS = 150
/** A split vote is asked again up to this many times in all, after a random pause of up to round × this. */
const CONTENDED_ROUNDS = 6
const CONTENDED_PAUSE_MS = 40

export type ClaimResult =
  | { granted: true, at: string[] }
  /** Another holder has it: `holder` names it (a VM id, a network id); `contended`: none had a majority, even after retries. */
  | { granted: false, holder: string, contended: boolean }

/**
 * Claims on cluster-wide keys other than VM names — a network's name (`net:NAME`), a VXLAN id
 * (`vni:N`), an address (`ip:NETWORK-ID:ADDR`) — over the authorities' claim protocol (NameClaims),
 * decided by a majority of the key's three deciders (claim-quorum.ts), asked at once.
 */
export class ClusterClaims {
  constructor (private readonly deps: { selfId: string, view: Pick<ClusterView, 'hosts' | 'get'>, peers: Pick<PeerClient, 'negotiate'>, log: Logger }) {}

  /**
   * Claims `key` for `holder`. A split vote (claimants racing, none with a majority; each gives back
   * what it got) is asked again after a short random pause, so a race costs a retry, not the key.
   */
  async claim (key: string, holder: string, idempotencyKey: string, ttlMs = CLAIM_TTL_MS): Promise<ClaimResult> {
    for (let round = 1; ; round++) {
      const result = await this.claimOnce(key, holder, idempotencyKey, ttlMs)
      if (result.granted || !result.contended || round >= CONTENDED_ROUNDS) return result
      await new Promise((resolve) => setTimeout(resolve, Math.random() * CONTENDED_PAUSE_MS * round))
    }
  }

  private async claimOnce (key: string, holder: string, idempotencyKey: string, ttlMs: number): Promise<ClaimResult> {
    const deciders = keyAuthorities(key, this.deps.view)
    const votes = await Promise.all(deciders.map(async (authority) => await this.vote(authority, key, holder, idempotencyKey, ttlMs)))
    const granted = deciders.filter((_, i) => votes[i]?.kind === 'granted')
    const result = tally(votes)
    if (result.outcome === 'granted') return { granted: true, at: granted }
    // Not ours: what was granted is given back, so the winner's claim is the only one left.
    await this.releaseAt(granted, key, holder)
    if (result.outcome === 'taken') return { granted: false, holder: result.holder, contended: result.contended }
    const silent = deciders.flatMap((d, i) => { const v = votes[i]; return v?.kind === 'silent' ? [`${d.slice(-8)} (${v.why})`] : [] })
    throw new ControlError('UNAVAILABLE', `${key} is decided by ${result.needed} of ${deciders.length} hosts, and only ${result.answered} answered: ${silent.join(', ') || 'no host known'}; retry when they are back`)
  }

  /** Makes the claim permanent (until released) at every decider; warns when fewer than a majority took it. */
  async bind (key: string, holder: string): Promise<void> {
    const deciders = keyAuthorities(key, this.deps.view)
    const bound = await Promise.all(deciders.map(async (authority) => {
      try {
        return (await this.deps.peers.negotiate(authority, { bindName: { name: key, vmId: holder, owner: this.deps.selfId } })).nameBound?.ok === true
      } catch (err) {
        this.deps.log.warn('could not bind a claim at an authority', { key, authority, err: (err as Error).message })
        return false
      }
    }))
    const ok = bound.filter(Boolean).length
    // Fewer than a majority: the claim lapses where it was not bound; gossip of the holder (NameClaims' inUse) still guards it.
    if (ok < majorityOf(deciders.length)) this.deps.log.warn('a claim was bound at fewer than a majority of its deciders', { key, holder, bound: ok, deciders: deciders.length })
  }

  /** Frees the key where it may be held (a release where nothing is held is a no-op). */
  async release (key: string, holder: string): Promise<void> {
    await this.releaseAt(keyAuthorities(key, this.deps.view), key, holder)
  }

  private async vote (authority: string, key: string, holder: string, idempotencyKey: string, ttlMs: number): Promise<Vote> {
    const host = this.deps.view.get(authority)
    if (host?.liveness === 'dead') return { kind: 'silent', why: 'dead' }
    for (let i = 1; ; i++) {
      try {
        const claim = (await this.deps.peers.negotiate(authority, { claimName: { name: key, idempotencyKey, vmId: holder, brokerId: this.deps.selfId, ttlMs } })).nameClaim
        const mine = claim?.outcome === pb.NameClaim.Outcome.OUTCOME_GRANTED || (claim?.outcome === pb.NameClaim.Outcome.OUTCOME_SAME_REQUEST && claim.vmId === holder)
        return mine ? { kind: 'granted' } : { kind: 'taken', holder: claim?.vmId ?? '' }
      } catch (err) {
        // Only silence is asked again; any other failure is this decider's answer for now.
        if ((err as ControlError).code !== 'UNAVAILABLE' || i >= TRIES) return { kind: 'silent', why: (err as Error).message }
        // A connection closing under load is redialled by the next request: give it a moment.
        await new Promise((resolve) => setTimeout(resolve, RETRY_PAUSE_MS * i))
      }
    }
  }

  private async releaseAt (authorities: string[], key: string, holder: string): Promise<void> {
    await Promise.all(authorities.map(async (authority) => {
      await this.deps.peers.negotiate(authority, { bindName: { name: key, vmId: holder, release: true } }).catch((err: unknown) => {
        this.deps.log.warn('could not release a claim at an authority', { key, authority, err: (err as Error).message })
      })
    }))
  }
}
