import { describe, expect, it } from 'vitest'
import { GIB, allocatableAmount, freeCapacity } from '../src/index.js'

describe('allocatableAmount', () => {
  it.each([
    // total, hostReserved, ratio, expected
    [64, 4, 1, 60],
    [16, 2, 4, 56],
    [10, 0, 1.5, 15],
    [7, 0, 1.5, 10], // 10.5 floored: a host never offers a fraction of a unit
    [3, 5, 2, 0], // reserved above total: nothing, not a negative capacity
    [100, 0, 0, 100], // unset ratio (proto3 decodes 0): no overcommit, never more
    [100, 0, Number.NaN, 100],
    [2 ** 53 - 1, 0, 1, 2 ** 53 - 1], // ratio 1 keeps bytes exact to the last one
    [2 ** 52 + 1, 1, 1, 2 ** 52]
  ])('(%d − %d) × %d → %d', (total, reserved, ratio, expected) => {
    expect(allocatableAmount(total, reserved, ratio)).toBe(expected)
  })

  it('stays an integer for byte counts under every ratio', () => {
    for (const ratio of [0.5, 1.1, 1.25, 3, 4]) {
      const v = allocatableAmount(1_000_000_007 * 1024, 4 * GIB, ratio)
      expect(Number.isInteger(v)).toBe(true)
      expect(v).toBeLessThanOrEqual((1_000_000_007 * 1024 - 4 * GIB) * ratio)
    }
  })
})

describe('freeCapacity', () => {
  it('is (total − hostReserved) × ratio − allocated − reservations per dimension', () => {
    const free = freeCapacity({
      total: { vcpus: 16, memoryBytes: 64 * GIB, diskBytes: 1000 * GIB },
      hostReserved: { vcpus: 2, memoryBytes: 4 * GIB, diskBytes: 100 * GIB },
      allocated: { vcpus: 20, memoryBytes: 30 * GIB, diskBytes: 200 * GIB },
      reservations: { vcpus: 4, memoryBytes: 8 * GIB, diskBytes: 50 * GIB },
      overcommit: { cpu: 4, memory: 1, disk: 1.5 }
    })
    expect(free).toEqual({ vcpus: 14 * 4 - 24, memoryBytes: 22 * GIB, diskBytes: 1350 * GIB - 250 * GIB })
  })

  it('goes negative on an over-committed host instead of hiding it', () => {
    const free = freeCapacity({
      total: { vcpus: 4, memoryBytes: 8 * GIB, diskBytes: 0 },
      hostReserved: { vcpus: 0, memoryBytes: 0, diskBytes: 0 },
      allocated: { vcpus: 6, memoryBytes: 9 * GIB, diskBytes: 0 },
      reservations: { vcpus: 0, memoryBytes: 0, diskBytes: 0 },
      overcommit: { cpu: 1, memory: 1, disk: 1 }
    })
    expect(free).toEqual({ vcpus: -2, memoryBytes: -1 * GIB, diskBytes: 0 })
  })
})
