import { describe, expect, it } from 'vitest'
import { bootMemoryMiB, foldOnlineGrowth, hotplugRefusal, maxMemoryMiB } from '../src/memory-layout.js'

const spec = { id: 'm1', vcpus: 1, memoryMiB: 384, memoryDimmsMiB: [128, 128], maxMemoryMiB: 512, boot: { kind: 'kernel' as const, kernel: '/k' } }

describe('a guest\'s memory layout: boot RAM plus the DIMMs it got while it ran', () => {
  it('boots with its memory less the DIMMs, and may grow to its room', () => {
    expect(bootMemoryMiB(spec)).toBe(128)
    expect(maxMemoryMiB(spec)).toBe(512)
    expect(bootMemoryMiB({ memoryMiB: 256 })).toBe(256)
    expect(maxMemoryMiB({ memoryMiB: 256 })).toBe(256)
  })

  it('without room (the default) it does not grow online', () => {
    expect(hotplugRefusal({ memoryMiB: 256 }, 384)).toMatch(/no room to grow online \(vm create --max-memory/)
  })

  it.each([
    [512, undefined],
    [640, 'it has room for 512 MiB (its --max-memory)'],
    [448, 'memory grows online in steps of 128 MiB (the guest kernel\'s memory block), not 64 MiB'],
    [384, 'a running guest\'s memory only grows'],
    [256, 'a running guest\'s memory only grows']
  ])('to %i MiB online: %s', (to, why) => {
    expect(hotplugRefusal(spec, to)).toBe(why)
  })

  it('has 16 slots', () => {
    const full = { memoryMiB: 16 * 128 + 1024, memoryDimmsMiB: Array.from({ length: 16 }, () => 128), maxMemoryMiB: 8192 }
    expect(hotplugRefusal(full, full.memoryMiB + 128)).toBe('all 16 memory slots are used')
  })

  it('a fresh boot folds the DIMMs into boot RAM', () => {
    expect(foldOnlineGrowth(spec)).toEqual({ id: 'm1', vcpus: 1, memoryMiB: 384, maxMemoryMiB: 512, boot: spec.boot })
    expect(bootMemoryMiB(foldOnlineGrowth(spec))).toBe(384)
  })
})
