import { createHash } from 'node:crypto'

export interface WitnessCandidate {
  id: string
  alive: boolean
  /** The host's failure-domain label value (undefined: no label, or no key). */
  domain: string | undefined
}

/**
 * The witness of a VM's replica group when owner + holders are an even number (so a majority
 * means something): an alive host that is neither the owner nor a holder, in a failure domain none
 * of them is in when one exists; among equals, the highest rendezvous hash of (vm, host), so every
 * host that asks chooses the same one and a witness changes only when it must. Undefined when the
 * group is odd already, or no host qualifies.
 */
export function chooseWitness (input: {
  vmId: string
  owner: string
  holders: readonly string[]
  hosts: readonly WitnessCandidate[]
  /** The failure domains of the owner and holders. */
  takenDomains: readonly string[]
}): string | undefined {
  if ((1 + input.holders.length) % 2 === 1) return undefined
  const members = new Set([input.owner, ...input.holders])
  const taken = new Set(input.takenDomains)
  const eligible = input.hosts.filter((h) => h.alive && !members.has(h.id))
  const apart = eligible.filter((h) => h.domain === undefined || !taken.has(h.domain))
  const pool = apart.length > 0 ? apart : eligible
  let best: { id: string, score: string } | undefined
  for (const h of pool) {
    const score = createHash('sha256').update(`${input.vmId}\n${h.id}`).digest('hex')
    if (best === undefined || score > best.score) best = { id: h.id, score }
  }
  return best?.id
}
