import { describe, expect, it } from 'vitest'
import { SimHypervisor } from '../src/index.js'
import { hypervisorTests } from './hypervisor-compliance.js'

hypervisorTests('SimHypervisor', async () => {
  const hypervisor = new SimHypervisor({ startLatencyMs: 1, stopLatencyMs: 1 })
  return {
    hypervisor,
    spec: (id) => ({ id, vcpus: 1, memoryMiB: 128, boot: { kind: 'kernel', kernel: '/sim/vmlinux' }, disks: [{ name: 'vda', sizeMiB: 16 }] }),
    cleanup: async () => {}
  }
})

describe('SimHypervisor', () => {
  it('honours its configured start latency', async () => {
    const hv = new SimHypervisor({ startLatencyMs: 50 })
    await hv.create({ id: 'a', vcpus: 1, memoryMiB: 64, boot: { kind: 'kernel', kernel: '/k' } })
    const t0 = performance.now()
    await hv.start('a')
    expect(performance.now() - t0).toBeGreaterThanOrEqual(45)
  })

  it('reports an injected crash as a crashed event', async () => {
    const hv = new SimHypervisor()
    const seen: string[] = []
    hv.onEvent((e) => seen.push(`${e.type}:${'reason' in e ? e.reason : ''}`))
    await hv.create({ id: 'a', vcpus: 1, memoryMiB: 64, boot: { kind: 'kernel', kernel: '/k' } })
    await hv.start('a')
    hv.crash('a')
    expect((await hv.inspect('a')).state).toBe('crashed')
    expect(seen).toEqual(['started:', 'crashed:crashed'])
  })
})
