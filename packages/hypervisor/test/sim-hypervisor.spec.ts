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

  it('keeps a VM\'s NICs (validated, nothing behind them) through create and migration', async () => {
    const hv = new SimHypervisor()
    const nics = [{ mac: '02:00:00:00:00:01', tap: 'mvt0' }]
    await hv.create({ id: 'a', vcpus: 1, memoryMiB: 64, boot: { kind: 'kernel', kernel: '/k' }, nics })
    expect((await hv.inspect('a')).spec.nics).toEqual(nics)
    await hv.prepareIncoming({ id: 'b', vcpus: 1, memoryMiB: 64, boot: { kind: 'kernel', kernel: '/k' }, nics }, { disks: 'shared' })
    expect((await hv.inspect('b')).spec.nics).toEqual(nics)
    await expect(hv.create({ id: 'c', vcpus: 1, memoryMiB: 64, boot: { kind: 'kernel', kernel: '/k' }, nics: [{ mac: '03:00:00:00:00:01', tap: 'mvt0' }] }))
      .rejects.toMatchObject({ code: 'ERR_INVALID_SPEC', message: expect.stringContaining('nics[0].mac') })
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
