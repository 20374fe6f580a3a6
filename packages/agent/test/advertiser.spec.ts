import { describe, expect, it } from 'vitest'
import type { HostAdvertContent } from '@meshvirt/mesh'
import { Advertiser, type AdvertiserDeps } from '../src/host/advertiser.js'
import { AgentEvents } from '../src/util/agent-events.js'

const NONE = { vcpus: 0, memoryBytes: 0, diskBytes: 0 }

/** An advertiser over a store that throws once closed, as better-sqlite3 does. */
function harness (): { advertiser: Advertiser, events: AgentEvents, published: Array<Partial<HostAdvertContent>>, hints: boolean[], close: () => void } {
  let open = true
  const guard = <T>(value: T): T => { if (!open) throw new TypeError('The database connection is not open'); return value }
  const events = new AgentEvents()
  const deps = {
    inventory: { hostname: 'h', vcpus: 2, memoryBytes: 1 << 30, diskBytes: 1 << 30, cpuModel: 'm', cpuFlags: [], cpuFlagsFingerprint: 'f', accelerator: 'tcg', qemuVersion: '7.2', machineTypes: [] },
    config: { labels: {}, overcommit: { cpu: 1, memory: 1 } },
    store: { allocated: () => guard(NONE), reserved: () => guard(NONE) },
    ledger: { hostReserved: () => guard(NONE), capacity: () => guard({ reservations: NONE }) },
    admin: { get: () => 'active' },
    events,
    vms: () => []
  } as unknown as AdvertiserDeps
  const published: Array<Partial<HostAdvertContent>> = []
  const hints: boolean[] = []
  const advertiser = new Advertiser(deps)
  advertiser.attach({ updateAdvert: async (content, opts) => { published.push(content); hints.push(opts?.hint === true) } })
  return { advertiser, events, published, hints, close: () => { open = false } }
}

const turn = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }

describe('Advertiser', () => {
  it('rebuilds the advert once per event-loop turn however many changes arrive', async () => {
    const { advertiser, events, published } = harness()
    events.emit('ledger:changed', {})
    events.emit('vm:changed', {})
    events.emit('ledger:changed', {})
    await turn()
    expect(published).toHaveLength(1)
    expect(published[0]?.hostname).toBe('h')
    advertiser.stop()
  })

  it('passes a sample on as a hint, unless a real change came in the same turn', async () => {
    const { advertiser, events, hints } = harness()
    events.emit('features:changed', { hint: true })
    await turn()
    events.emit('features:changed', { hint: true })
    events.emit('vm:changed', {})
    await turn()
    events.emit('ledger:changed', {})
    events.emit('features:changed', { hint: true })
    await turn()
    events.emit('features:changed', {})
    await turn()
    expect(hints).toEqual([true, false, false, false])
    advertiser.stop()
  })

  it('a rebuild queued before stop does not run after it (the store is closed by then)', async () => {
    const { advertiser, events, published, close } = harness()
    events.emit('ledger:changed', {})
    advertiser.stop()
    close()
    await turn()
    await turn()
    expect(published).toHaveLength(0)
    events.emit('ledger:changed', {})
    await turn()
    expect(published).toHaveLength(0)
  })
})
