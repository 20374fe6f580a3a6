import type { HostSnapshot } from './host-snapshot.js'
import type { PlacementOptions } from './place-vm.js'
import type { PlacementRequest } from './placement-request.js'
import type { RankedCandidate } from './placement-result.js'
import { rankHosts } from './rank-hosts.js'
import type { Rejection } from './rejection.js'
import { summarizeRejections } from './summarize-rejections.js'

export interface ReplicaSetResult {
  /** Up to `replicas` hosts, each in a different failure domain, best-scored first. */
  hosts: RankedCandidate[]
  /** The failure-domain value of each chosen host (the host id when `spreadBy` is unset). */
  domains: string[]
  /** True when as many hosts as asked were found. */
  complete: boolean
  /** Every feasible host, ranked; the broker falls back along it (within a domain) when a Reserve is refused. */
  candidates: RankedCandidate[]
  rejected: Rejection[]
  summary: string
}

/**
 * k hosts in k distinct failure domains (`spreadBy` label; distinct hosts when unset): the best
 * candidate of each domain, domains taken in order of their best candidate. Always a full scan:
 * a sample could miss the one host of a small domain. A host without the label cannot prove
 * which domain it is in, so it is rejected (FAILURE_DOMAIN) rather than counted as its own.
 */
export function placeReplicaSet (request: PlacementRequest, view: readonly HostSnapshot[], options: PlacementOptions = {}): ReplicaSetResult {
  const wanted = Math.max(0, Math.floor(request.replicas ?? 1))
  const key = request.spreadBy !== undefined && request.spreadBy !== '' ? request.spreadBy : undefined
  const domainOf = (h: HostSnapshot): string | undefined => key === undefined ? h.id : (Object.hasOwn(h.labels, key) ? h.labels[key] : undefined)

  const ranked = rankHosts(request, view, options)
  const rejected = [...ranked.rejected]
  const candidates: RankedCandidate[] = []
  for (const c of ranked.candidates) {
    if (domainOf(c.host) !== undefined) candidates.push(c)
    else rejected.push({ hostId: c.hostId, filter: 'FAILURE_DOMAIN', reason: `has no ${key ?? ''} label`, detail: key })
  }

  const hosts: RankedCandidate[] = []
  const domains: string[] = []
  for (const c of candidates) {
    if (hosts.length >= wanted) break
    const d = domainOf(c.host) as string
    if (domains.includes(d)) continue
    hosts.push(c)
    domains.push(d)
  }

  const complete = hosts.length >= wanted
  const what = key === undefined ? 'distinct hosts' : `distinct ${key} domains`
  let summary = `chose ${hosts.map((h) => h.host.hostname ?? h.hostId).join(', ') || 'nothing'} for ${wanted} replica${wanted === 1 ? '' : 's'} in ${what}`
  if (!complete) {
    const existing = new Set<string>()
    for (const h of view) {
      const d = domainOf(h)
      if (d !== undefined) existing.add(d)
    }
    summary = existing.size < wanted
      ? `only ${hosts.length} of ${wanted} replicas placed: the view has only ${existing.size} ${key === undefined ? 'hosts' : `${key} domains`}`
      : `only ${hosts.length} of ${wanted} replicas placed: ${existing.size} ${key === undefined ? 'hosts' : `${key} domains`} exist but only ${domains.length} have a host that fits`
    summary += `; ${summarizeRejections(rejected, candidates.length)}`
  }
  return { hosts, domains, complete, candidates, rejected, summary }
}
