import { emptyAdvertContent, type HostAdvert, type HostEntry, type VmSummary } from '@meshvirt/mesh'
import { describe, expect, it } from 'vitest'
import { balanceView, BalanceSettingHolder } from '../src/balance/index.js'

const GIB = 2 ** 30

function entry (hostId: string, vms: VmSummary[], over: Partial<HostAdvert> = {}): HostEntry {
  const advert: HostAdvert = { ...emptyAdvertContent(), hostId, incarnation: 1, seq: 1, addrs: [], sentAtMs: 0, heartbeatIntervalMs: 1000, accelerator: 'kvm', vms, ...over }
  return { hostId, advert, liveness: 'alive', lastHeardMs: 0, livenessSinceMs: 0, self: false }
}

function summary (id: string, over: Partial<VmSummary> = {}): VmSummary {
  return { id, name: id, epoch: 1, role: 'owner', state: 'running', resources: { vcpus: 2, memoryBytes: 4 * GIB, diskBytes: 0 }, owner: 'h1', group: '', nics: [], ...over }
}

describe('balanceView', () => {
  it('reads other hosts\' VMs from gossip: usage, group, no-balance and state pin them; replicas are not theirs', () => {
    const [h] = balanceView([entry('h1', [
      summary('plain', { usage: { cpuCores: 0.5, memoryBytes: GIB }, group: 'web' }),
      summary('kept', { noBalance: true }),
      summary('stopped', { state: 'stopped' }),
      summary('copy', { role: 'replica' })
    ])], 'self')
    expect(h?.snapshot.accelerator).toBe('kvm')
    expect(h?.vms.map((v) => [v.id, v.pinned, v.usage?.cpuCores, v.request.group, v.request.liveOn])).toEqual([
      ['plain', undefined, 0.5, 'web', 'kvm'],
      ['kept', 'created --no-balance', undefined, undefined, 'kvm'],
      ['stopped', 'it is stopped', undefined, undefined, 'kvm']
    ])
  })

  it('this host\'s own VMs come from its rows, not its advert', () => {
    const own = [{ id: 'mine', request: { resources: { vcpus: 1, memoryBytes: GIB, diskBytes: 0 } } }]
    const hosts = balanceView([entry('self', [summary('old')]), entry('h2', [])], 'self', own)
    expect(hosts[0]?.vms).toBe(own)
    expect(hosts[1]?.vms).toEqual([])
  })
})

describe('BalanceSettingHolder', () => {
  it('takes only newer settings, keeps them in the store, and reads them back', () => {
    const meta = new Map<string, string>()
    const store = { getMeta: (k: string) => meta.get(k), setMeta: (k: string, v: string) => { meta.set(k, v) } }
    const seen: string[] = []
    const h = new BalanceSettingHolder(store, (s) => { seen.push(s.mode) })
    expect(h.current).toEqual({ mode: 'off', version: 0, setBy: '' })
    expect(h.offer({ mode: 'auto', version: 10, setBy: 'a' })).toBe(true)
    expect(h.offer({ mode: 'off', version: 9, setBy: 'z' })).toBe(false)
    expect(h.offer(undefined)).toBe(false)
    expect(seen).toEqual(['auto'])
    expect(new BalanceSettingHolder(store, () => {}).current).toEqual({ mode: 'auto', version: 10, setBy: 'a' })
    meta.set('balance.setting', '{"mode":"sideways","version":1,"setBy":""}')
    expect(new BalanceSettingHolder(store, () => {}).current.mode).toBe('off')
  })
})
