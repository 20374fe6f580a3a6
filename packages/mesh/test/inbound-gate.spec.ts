/** Pre-authentication bounds (issue 22, finding 4): a flood of idle connections from one address cannot starve real peers. */
import { connect, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { pollUntil } from '@meshvirt/testkit/poll'
import { InboundGate, MAX_PENDING_PER_ADDRESS, PendingByAddress, type RefusalReport } from '../src/index.js'
import { TestCluster } from './helpers.js'

describe('PendingByAddress', () => {
  it('bounds each address, not the others, and gives slots back', () => {
    const t = new PendingByAddress(2)
    expect([t.admit('10.0.0.9'), t.admit('10.0.0.9'), t.admit('10.0.0.9')]).toEqual([true, true, false])
    expect(t.admit('10.0.0.1')).toBe(true)
    expect(t.pending()).toBe(3)
    t.release('10.0.0.9')
    expect(t.admit('10.0.0.9')).toBe(true)
    t.release('10.0.0.5') // never admitted: nothing to give back
    for (const a of ['10.0.0.9', '10.0.0.9', '10.0.0.1']) t.release(a)
    expect([t.pending(), t.addresses()]).toEqual([0, 0])
  })
})

describe('InboundGate', () => {
  /** A stand-in for libp2p's MultiaddrConnection: its remote address, and its close event. */
  const conn = (ip: string): { remoteAddr: { getComponents: () => Array<{ name: string, value: string }> }, addEventListener: (t: string, f: () => void) => void, close: () => void } => {
    let onClose = (): void => {}
    return { remoteAddr: { getComponents: () => [{ name: 'ip4', value: ip }, { name: 'tcp', value: '1' }] }, addEventListener: (_t, f) => { onClose = f }, close: () => { onClose() } }
  }

  it('refuses the address over its bound, releases on close or upgrade, and reports at most once per window', () => {
    let now = 1_000_000
    const reports: RefusalReport[] = []
    const gate = new InboundGate({ perAddress: 2, report: (r) => { reports.push(r) }, now: () => now })
    const g = gate.gater()
    const deny = (c: ReturnType<typeof conn>): boolean => g.denyInboundConnection?.(c as never) as boolean
    const [a, b, c] = [conn('127.0.0.2'), conn('127.0.0.2'), conn('127.0.0.2')]
    expect([deny(a), deny(b), deny(c)]).toEqual([false, false, true])
    expect(deny(conn('127.0.0.1'))).toBe(false)
    for (let i = 0; i < 5; i++) deny(conn('127.0.0.2'))
    expect(gate.stats()).toEqual({ pending: 3, refusedPerAddress: 6 })
    expect(reports).toEqual([{ refused: 1, addresses: ['127.0.0.2'], windowMs: 0 }])
    a.close()
    g.denyInboundUpgradedConnection?.({} as never, b as never)
    b.close() // already released at its upgrade: not twice
    expect(gate.stats().pending).toBe(1)
    now += 10_000
    deny(conn('127.0.0.2')); deny(conn('127.0.0.2')); deny(conn('127.0.0.2'))
    expect(reports[1]).toEqual({ refused: 6, addresses: ['127.0.0.2'], windowMs: 10_000 })
  })
})

describe('a flood of idle pre-auth connections from one address', () => {
  const cluster = new TestCluster()
  const flood: Socket[] = []
  let flooding = false
  afterEach(async () => {
    flooding = false
    for (const s of flood) s.destroy()
    await cluster.stopAll()
  })

  /** `n` TCP connections from 127.0.0.2 that never send a byte, each reopened 200 ms after it is closed. */
  const startFlood = (port: number, n: number): void => {
    flooding = true
    const open = (): void => {
      if (!flooding) return
      const s = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' })
      flood.push(s)
      s.on('error', () => {})
      s.on('close', () => { flood.splice(flood.indexOf(s), 1); setTimeout(open, 200) })
    }
    for (let i = 0; i < n; i++) open()
  }

  it('100 connections: three hosts still join through the flooded host, and requests go through', async () => {
    const target = await cluster.start()
    const port = Number(/\/tcp\/(\d+)/.exec(target.multiaddrs()[0] as string)?.[1])
    await target.handle('/test/echo/1', async (bytes) => bytes)
    startFlood(port, 100)
    // The flood has filled what it may: its address's bound, refusals counted.
    await pollUntil(() => (target.stats().inbound?.refusedPerAddress ?? 0) > 0, { timeoutMs: 10_000, what: 'the gate to refuse the flood' })
    expect(target.stats().inbound?.pending).toBeLessThanOrEqual(MAX_PENDING_PER_ADDRESS + 3)
    const t0 = Date.now()
    const joiners = [await cluster.start(), await cluster.start(), await cluster.start()]
    await pollUntil(() => joiners.every((j) => j.view.get(target.hostId)?.liveness === 'alive') && target.view.hosts().length === 4,
      { timeoutMs: 20_000, intervalMs: 100, what: 'three newcomers to join through the flooded host' })
    const joinedMs = Date.now() - t0
    for (const j of joiners) {
      const answer = await j.request(target.hostId, '/test/echo/1', new TextEncoder().encode('ping'), { timeoutMs: 5_000 })
      expect(new TextDecoder().decode(answer)).toBe('ping')
    }
    const { pending, refusedPerAddress } = target.stats().inbound ?? { pending: -1, refusedPerAddress: -1 }
    console.log(`flood of 100 idle connections from 127.0.0.2: 3 newcomers joined in ${joinedMs} ms; pending handshakes ${pending}, refused ${refusedPerAddress}`)
    expect(refusedPerAddress).toBeGreaterThan(0)
  }, 60_000)
})
