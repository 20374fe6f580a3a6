import type { ClusterView } from '@meshvirt/mesh'
import { pb } from '@meshvirt/proto'
import { ControlError } from '../control/errors.js'
import type { Logger } from '../log/logger.js'
import { claimHolders, NAME_AUTHORITIES, nameAuthorities, nameHolders } from '../negotiate/name-authority.js'
import type { PeerClient } from '../negotiate/peer-client.js'

/**
 * A claim not bound within this is freed by its authorities (the claimant died mid-way). Long (the
 * authorities' maximum): an address is claimed before placement, which may take tens of seconds
 * under load; and a lapsed claim of an address in use is refused anyway (NameClaims' `inUse`).
 */
export const CLAIM_TTL_MS = 120_000
const MAX_AUTHORITIES_TRIED = 4

export type ClaimResult =
  | { granted: true, at: string[] }
  /** Another holder has it: `holder` names it (a VM id, a network id). */
  | { granted: false, holder: string }

/**
 * Claims on cluster-wide keys other than VM names — a network's name (`net:NAME`), a VXLAN id
 * (`vni:N`), an address (`ip:NETWORK-ID:ADDR`) — with the same rendezvous authorities and the same
 * protocol as VM names (name-authority.ts): claimed at the first two reachable authorities, so
 * two agents racing for one key meet at the same host, and the death of one authority leaves it known.
 */
export class ClusterClaims {
  constructor (private readonly deps: { selfId: string, view: ClusterView, peers: Pick<PeerClient, 'negotiate'>, log: Logger }) {}

  async claim (key: string, holder: string, idempotencyKey: string): Promise<ClaimResult> {
    const authorities = nameAuthorities(key, nameHolders(this.deps.view))
    if (authorities.length === 0) throw new ControlError('UNAVAILABLE', 'no alive host in this agent\'s view')
    const at: string[] = []
    let lastError: unknown
    for (const authority of authorities.slice(0, MAX_AUTHORITIES_TRIED)) {
      if (at.length === NAME_AUTHORITIES) break
      let res
      try {
        res = await this.deps.peers.negotiate(authority, { claimName: { name: key, idempotencyKey, vmId: holder, brokerId: this.deps.selfId, ttlMs: CLAIM_TTL_MS } })
      } catch (err) {
        if ((err as ControlError).code !== 'UNAVAILABLE') throw err
        lastError = err
        continue
      }
      const claim = res.nameClaim
      if (claim?.outcome === pb.NameClaim.Outcome.OUTCOME_TAKEN || (claim?.outcome === pb.NameClaim.Outcome.OUTCOME_SAME_REQUEST && claim.vmId !== holder)) {
        await this.releaseAt(at, key, holder)
        return { granted: false, holder: claim.vmId ?? '' }
      }
      at.push(authority)
    }
    if (at.length === 0) throw lastError ?? new ControlError('UNAVAILABLE', `no authority for ${key} answered`)
    return { granted: true, at }
  }

  /** Makes the claim permanent (until released), where it is held now. */
  async bind (key: string, holder: string): Promise<void> {
    await this.each(key, async (authority) => {
      await this.deps.peers.negotiate(authority, { bindName: { name: key, vmId: holder, owner: this.deps.selfId } })
    }, 'bind')
  }

  /** Frees the key where it may be held (a release where nothing is held is a no-op). */
  async release (key: string, holder: string): Promise<void> {
    await this.releaseAt(claimHolders(key, this.deps.view), key, holder)
  }

  private async releaseAt (authorities: string[], key: string, holder: string): Promise<void> {
    await Promise.all(authorities.map(async (authority) => {
      await this.deps.peers.negotiate(authority, { bindName: { name: key, vmId: holder, release: true } }).catch((err: unknown) => {
        this.deps.log.warn('could not release a claim at an authority', { key, authority, err: (err as Error).message })
      })
    }))
  }

  private async each (key: string, fn: (authority: string) => Promise<void>, what: string): Promise<void> {
    await Promise.all(claimHolders(key, this.deps.view).map(async (authority) => {
      await fn(authority).catch((err: unknown) => {
        this.deps.log.warn(`could not ${what} a claim at an authority`, { key, authority, err: (err as Error).message })
      })
    }))
  }
}
