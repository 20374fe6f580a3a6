import { pb, type meshvirt } from '@meshvirt/proto'
import { ControlError } from '../control/errors.js'
import type { Logger } from '../log/logger.js'
import type { LoadReport } from '../util/adaptive-limit.js'
import { NAME_AUTHORITIES } from './name-authority.js'
import type { PeerClient } from './peer-client.js'

/** How long a name claim waits for its commit; a broker that dies frees the name after this. */
export const NAME_CLAIM_TTL_MS = 30_000
const SAME_REQUEST_POLL_MS = 200
/** Rendezvous-ranked authorities tried for a name before giving up. */
const MAX_AUTHORITIES_TRIED = 4

/** A VM an earlier request with the same idempotency key made (answered instead of placing again). */
export interface MadeBefore {
  vm: meshvirt.v1.IVmInfo
  existed: true
}

export interface NameClaimsDeps {
  selfId: string
  peers: PeerClient
  log: Logger
}

/**
 * The broker's side of VM names (docs/design.md, "Create"): a name is claimed at its rendezvous
 * authorities before placement, bound to the VM's owner after the commit, or released. An
 * idempotency key retried finds the VM its first request made instead of making a second.
 */
export class NameClaims {
  constructor (private readonly deps: NameClaimsDeps) {}

  /**
   * Claims the name at the first NAME_AUTHORITIES reachable authorities, one after the other (in
   * the rendezvous order every broker uses, so two brokers meet at the first). Two, because the
   * first may die with what it knew: a retry whose view lost it finds the claim — and a binding to
   * the host a lost commit may have reached — at the second. Returns the VM already made when
   * this idempotency key made it before; otherwise the name is ours, held where `claimedAt` says.
   */
  async claim (authorities: string[], name: string, key: string, vmId: string, load: LoadReport): Promise<{ claimedAt: string[], existing?: MadeBefore }> {
    const claimedAt: string[] = []
    let lastError: unknown
    for (const authority of authorities.slice(0, MAX_AUTHORITIES_TRIED)) {
      if (claimedAt.length === NAME_AUTHORITIES) break
      try {
        const { existing } = await this.claimAt(authority, name, key, vmId, load)
        if (existing !== undefined) {
          // Made before: the authorities that granted this broker a claim learn where it runs.
          await this.bindAt(claimedAt, { name, vmId, owner: existing.vm.summary?.owner ?? '' })
          return { claimedAt, existing }
        }
        claimedAt.push(authority)
      } catch (err) {
        // Only the authority's own silence moves the claim on. An answer — the name is taken, or
        // bound to a host that does not answer now — is the name's state, and ends the create.
        if (!(err instanceof AuthorityUnreachable)) {
          await this.bindAt(claimedAt, { name, vmId, release: true })
          throw err
        }
        lastError = err.cause
        load.congested()
        this.deps.log.warn('name authority unreachable, trying the next', { name, authority, err: err.cause.message })
      }
    }
    if (claimedAt.length === 0) throw lastError
    return { claimedAt }
  }

  /** Binds (or frees) the name at every authority that holds this broker's claim, at once. */
  async bindAt (authorities: string[], binding: meshvirt.v1.IBindName): Promise<void> {
    await Promise.all(authorities.map(async (authority) => {
      await this.deps.peers.negotiate(authority, { bindName: binding }).catch((err: unknown) => {
        this.deps.log.warn('could not bind the VM name at an authority', { vm: binding.vmId, name: binding.name, authority, release: binding.release === true, err: (err as Error).message })
      })
    }))
  }

  private async claimAt (authority: string, name: string, key: string, vmId: string, load: LoadReport): Promise<{ existing?: MadeBefore }> {
    const deadline = Date.now() + NAME_CLAIM_TTL_MS
    for (;;) {
      const res = await withRetries(async () => await this.deps.peers.negotiate(authority, { claimName: { name, idempotencyKey: key, vmId, brokerId: this.deps.selfId, ttlMs: NAME_CLAIM_TTL_MS } }), load)
        .catch((err: unknown) => { throw (err as ControlError).code === 'UNAVAILABLE' ? new AuthorityUnreachable(err as ControlError) : err })
      const claim = res.nameClaim
      if (claim == null) throw new ControlError('INTERNAL', 'name authority answered without a claim')
      if (claim.outcome === pb.NameClaim.Outcome.OUTCOME_GRANTED) return {}
      if (claim.outcome === pb.NameClaim.Outcome.OUTCOME_TAKEN) throw nameTaken(name, claim.vmId ?? '', claim.owner ?? '')
      // The same request, retried: answer with the VM it made, or wait for the broker still making it.
      const owner = claim.owner ?? ''
      if (owner !== '') {
        const found = await this.askOwner(owner, claim.vmId ?? vmId, name)
        if (found !== undefined) return { existing: found }
        // The host answered that it never committed it: the binding was only a guess, drop it.
        await this.deps.peers.negotiate(authority, { bindName: { name, vmId: claim.vmId ?? vmId, release: true } })
        continue
      }
      if (Date.now() > deadline) throw new ControlError('IN_PROGRESS', `another agent is still creating VM ${name} for this request; retry later`)
      await new Promise((resolve) => setTimeout(resolve, SAME_REQUEST_POLL_MS))
    }
  }

  /**
   * The VM this request made, asked of the host the name is bound to; undefined when that host
   * answers that it has no such VM. A host that does not answer may have it: never re-placed.
   */
  private async askOwner (owner: string, vmId: string, name: string): Promise<MadeBefore | undefined> {
    try {
      const info = await this.deps.peers.control(owner, { hops: 1, inspectVm: { vm: { id: vmId } } })
      return { vm: info.vm as meshvirt.v1.IVmInfo, existed: true }
    } catch (err) {
      if ((err as ControlError).code === 'NOT_FOUND') return undefined
      throw new ControlError('UNAVAILABLE', `VM ${name} may have been committed on host ${owner.slice(-12)} for this request, and that host does not answer: it is never placed a second time; it runs there when the host returns (meshvirt vm delete --force ${name} gives it up)`)
    }
  }
}

export function nameTaken (name: string, vmId: string, owner: string): ControlError {
  return new ControlError('NAME_TAKEN', `a VM named ${name} already exists (${vmId}${owner !== '' ? ` on ${owner.slice(-12)}` : ', being created'}): choose another --name`, { vmId, owner })
}

/** Claims are idempotent (same key, same answer), so a slow or lost answer is simply asked again. */
async function withRetries<T> (fn: () => Promise<T>, load: LoadReport, tries = 3): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn()
    } catch (err) {
      if ((err as ControlError).code !== 'UNAVAILABLE' || i >= tries) throw err
      load.congested()
    }
  }
}

/** A name authority that did not answer a claim (as opposed to one that answered it). */
class AuthorityUnreachable extends Error {
  constructor (override readonly cause: ControlError) {
    super(cause.message)
  }
}
