import { describe, expect, it } from 'vitest'
import { GIB, MIB, summarizeRejections, type Rejection } from '../src/index.js'

const lacksMemory = (hostId: string, free: number): Rejection =>
  ({ hostId, filter: 'CAPACITY_MEMORY', reason: '', need: 4096 * MIB, free })

describe('summarizeRejections', () => {
  it('reads as the operator needs it, largest group first', () => {
    const rejections: Rejection[] = [
      { hostId: 'd', filter: 'HOST_STATE', reason: 'host is draining', state: 'draining' },
      lacksMemory('a', 1024 * MIB),
      lacksMemory('b', 2048 * MIB),
      lacksMemory('c', -512 * MIB)
    ]
    expect(summarizeRejections(rejections)).toBe('no host fits: 3 lack memory (need 4096 MiB, most free 2048 MiB), 1 is draining')
  })

  it.each([
    [[{ hostId: 'a', filter: 'CAPACITY_CPU', reason: '', need: 8, free: 2 }], '1 lacks vCPUs (need 8, most free 2)'],
    [[{ hostId: 'a', filter: 'CAPACITY_DISK', reason: '', need: 100 * GIB, free: 1.5 * GIB }], '1 lacks disk (need 100 GiB, most free 1.5 GiB)'],
    [[{ hostId: 'a', filter: 'HOST_STATE', reason: '', state: 'dead' }, { hostId: 'b', filter: 'HOST_STATE', reason: '', state: 'dead' }], '2 are dead'],
    [[{ hostId: 'a', filter: 'ACCELERATOR', reason: '' }], '1 has no KVM'],
    [[{ hostId: 'a', filter: 'ACCELERATOR', detail: 'tcg', reason: '' }, { hostId: 'b', filter: 'ACCELERATOR', detail: 'tcg', reason: '' }], '2 run KVM, not TCG (never across accelerators)'],
    [[{ hostId: 'a', filter: 'LABELS', reason: '', detail: 'zone=a' }, { hostId: 'b', filter: 'LABELS', reason: '', detail: 'zone=a' }], '2 do not match zone=a'],
    [[{ hostId: 'a', filter: 'AFFINITY', reason: '', detail: 'db' }], '1 runs no VM of group db'],
    [[{ hostId: 'a', filter: 'ANTI_AFFINITY', reason: '', detail: 'web' }], '1 runs a VM of group web'],
    [[{ hostId: 'a', filter: 'CPU_MODEL', reason: '', detail: 'EPYC' }], '1 cannot offer CPU model EPYC'],
    [[{ hostId: 'a', filter: 'EXCLUDED', reason: '' }], '1 is excluded'],
    [[{ hostId: 'a', filter: 'EXCLUDED', reason: '', detail: 'h7' }, { hostId: 'b', filter: 'EXCLUDED', reason: '', detail: 'h7' }], '2 are not the pinned host h7'],
    [[{ hostId: 'a', filter: 'FAILURE_DOMAIN', reason: '', detail: 'zone' }], '1 has no zone label']
  ] as const)('%j → "no host fits: %s"', (rejections, phrase) => {
    expect(summarizeRejections(rejections as readonly Rejection[])).toBe(`no host fits: ${phrase}`)
  })

  it('separates hosts by state and by constraint', () => {
    const rejections: Rejection[] = [
      { hostId: 'a', filter: 'HOST_STATE', reason: '', state: 'suspect' },
      { hostId: 'b', filter: 'HOST_STATE', reason: '', state: 'draining' },
      { hostId: 'c', filter: 'LABELS', reason: '', detail: 'zone=a' },
      { hostId: 'd', filter: 'LABELS', reason: '', detail: 'rack!=r1' }
    ]
    expect(summarizeRejections(rejections)).toBe('no host fits: 1 is suspect, 1 is draining, 1 does not match zone=a, 1 does not match rack!=r1')
  })

  it('says how many fit when some did', () => {
    expect(summarizeRejections([lacksMemory('a', 0)], 4)).toBe('4 of 5 hosts fit; 1 lacks memory (need 4096 MiB, most free 0 MiB)')
    expect(summarizeRejections([], 2)).toBe('2 of 2 hosts fit')
  })

  it('says so when the view is empty', () => {
    expect(summarizeRejections([])).toBe('no host fits: the view holds no hosts')
  })
})
