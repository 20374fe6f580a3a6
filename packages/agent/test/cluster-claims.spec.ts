import { describe, expect, it } from 'vitest'
import type { ClusterView } from '@meshvirt/mesh'
import { pb, type meshvirt } from '@meshvirt/proto'
import { ControlError } from '../src/control/errors.js'
import { silentLogger } from '../src/log/logger.js'
import { NameClaims } from '../src/negotiate/name-authority.js'
import { ClusterClaims } from '../src/network/cluster-claims.js'
import { keyAuthorities } from '../src/network/claim-quorum.js'
import { StateStore } from '../src/store/state-store.js'

type ClaimsPeers = ConstructorParameters<typeof ClusterClaims>[0]['peers']

const HOSTS = Array.from({ length: 6 }, (_, i) => `host-${i}`)
const KEY = 'ip:n1:10.0.0.7'

/**
 * Real authorities (NameClaims over an in-memory store each) behind a fake transport: per broker,
 * a view (who it thinks dead) and the deciders whose answers it never gets (a timeout under load —
 * the request may still have landed there).
 */
function cluster (): { authorities: Map<string, NameClaims>, stores: Map<string, StateStore>, broker: (self: string, opts?: { dead?: string[], silent?: string[], landsAnyway?: boolean }) => ClusterClaims } {
  const stores = new Map(HOSTS.map((h) => [h, new StateStore(':memory:')]))
  const authorities = new Map(HOSTS.map((h) => [h, new NameClaims(stores.get(h) as StateStore)]))
  const broker = (self: string, opts: { dead?: string[], silent?: string[], landsAnyway?: boolean } = {}): ClusterClaims => {
    const entries = HOSTS.map((hostId) => ({ hostId, liveness: opts.dead?.includes(hostId) === true ? 'dead' : 'alive' }))
    const view = { hosts: () => entries, get: (id: string) => entries.find((e) => e.hostId === id) } as unknown as ClusterView
    const negotiate = async (to: string, req: meshvirt.v1.INegotiateRequest): Promise<meshvirt.v1.INegotiateResponse> => {
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 5))
      const silent = opts.silent?.includes(to) === true
      if (silent && opts.landsAnyway !== true) throw new ControlError('UNAVAILABLE', 'timed out')
      const names = authorities.get(to) as NameClaims
      let res: meshvirt.v1.INegotiateResponse
      if (req.claimName != null) {
        const c = req.claimName
        const out = names.claim({ name: c.name ?? '', idempotencyKey: c.idempotencyKey ?? '', vmId: c.vmId ?? '', brokerId: self, ttlMs: c.ttlMs ?? 0 })
        res = { nameClaim: out.outcome === 'granted' ? { outcome: pb.NameClaim.Outcome.OUTCOME_GRANTED, vmId: c.vmId } : { outcome: out.outcome === 'taken' ? pb.NameClaim.Outcome.OUTCOME_TAKEN : pb.NameClaim.Outcome.OUTCOME_SAME_REQUEST, vmId: out.vmId, owner: out.owner } }
      } else {
        const b = req.bindName as meshvirt.v1.IBindName
        res = { nameBound: { ok: names.bind({ name: b.name ?? '', vmId: b.vmId ?? '', owner: b.owner ?? '', release: b.release === true }) } }
      }
      if (silent) throw new ControlError('UNAVAILABLE', 'timed out after it landed')
      return res
    }
    return new ClusterClaims({ selfId: self, view, peers: { negotiate: negotiate as unknown as ClaimsPeers['negotiate'] }, log: silentLogger })
  }
  return { authorities, stores, broker }
}

const holderAt = (stores: Map<string, StateStore>, host: string): string | undefined => stores.get(host)?.getNameClaim(KEY)?.vmId

async function outcome (p: Promise<{ granted: boolean }>): Promise<string> {
  try {
    return (await p).granted ? 'granted' : 'taken'
  } catch (err) {
    return (err as ControlError).code
  }
}

describe('ClusterClaims: one holder per key, whatever the brokers\' views', () => {
  const deciders = keyAuthorities(KEY, { hosts: () => HOSTS.map((hostId) => ({ hostId })) })

  it('three brokers racing for one key: exactly one wins (a split vote is asked again), and the losers leave no claim behind', async () => {
    for (let round = 0; round < 20; round++) {
      const { broker, stores } = cluster()
      const results = await Promise.all(['vm-a', 'vm-b', 'vm-c'].map(async (vm, i) => await broker(`host-${i}`).claim(KEY, vm, `key-${vm}`)))
      const winners = results.flatMap((r, i) => (r.granted ? [['vm-a', 'vm-b', 'vm-c'][i]] : []))
      expect(winners).toHaveLength(1)
      for (const d of deciders) {
        const held = holderAt(stores, d)
        if (held !== undefined) expect(held).toBe(winners[0])
      }
    }
  })

  it('a broker whose view thinks two deciders dead asks the same three, and is not granted without a majority', async () => {
    const { broker, stores } = cluster()
    expect(await outcome(broker('host-0').claim(KEY, 'vm-a', 'key-a'))).toBe('granted')
    // The liveness view of a loaded host flapped: the key's first two deciders look dead to it.
    const flapping = broker('host-5', { dead: deciders.slice(0, 2) })
    expect(await outcome(flapping.claim(KEY, 'vm-b', 'key-b'))).toBe('taken')
    const blind = broker('host-5', { dead: deciders.slice(0, 2), silent: [deciders[2] as string] })
    expect(await outcome(blind.claim(KEY, 'vm-b', 'key-b'))).toBe('UNAVAILABLE')
    for (const d of deciders) expect(holderAt(stores, d)).toBe('vm-a')
  })

  it('deciders that time out (the claim may have landed) count for nothing; what was granted is given back', async () => {
    const { broker, stores } = cluster()
    const slow = broker('host-0', { silent: deciders.slice(0, 2), landsAnyway: true })
    expect(await outcome(slow.claim(KEY, 'vm-a', 'key-a'))).toBe('UNAVAILABLE')
    // The third decider's grant was released; the two where it landed unseen still hold it until
    // their TTL — so another broker is refused rather than granted beside it.
    expect(holderAt(stores, deciders[2] as string)).toBeUndefined()
    expect(await outcome(broker('host-1').claim(KEY, 'vm-b', 'key-b'))).toBe('taken')
  })

  it('a claim bound, then released, is free again', async () => {
    const { broker } = cluster()
    const a = broker('host-0')
    expect(await outcome(a.claim(KEY, 'vm-a', 'key-a'))).toBe('granted')
    await a.bind(KEY, 'vm-a')
    expect(await outcome(broker('host-1').claim(KEY, 'vm-b', 'key-b'))).toBe('taken')
    await a.release(KEY, 'vm-a')
    expect(await outcome(broker('host-1').claim(KEY, 'vm-b', 'key-b'))).toBe('granted')
  })
})
