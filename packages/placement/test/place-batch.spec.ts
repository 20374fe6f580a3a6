import { describe, expect, it } from 'vitest'
import { GIB, placeBatch, placeVm } from '../src/index.js'
import { host, vm } from './fixtures.js'

const quarterHost = { vcpus: 4, memoryBytes: 16 * GIB, diskBytes: 0 }

describe('placeBatch', () => {
  it('lets each VM see the ones placed before it', () => {
    const view = [host('a'), host('b')]
    const results = placeBatch(Array.from({ length: 8 }, (_, i) => vm({ resources: quarterHost, seed: `vm${i}` })), view)
    const chosen = results.map((r) => r.chosen?.hostId)
    expect(chosen.filter((h) => h === 'a')).toHaveLength(4)
    expect(chosen.filter((h) => h === 'b')).toHaveLength(4)
    expect(chosen.slice(0, 4).every((h) => h === chosen[0])).toBe(true) // binpack fills one host first
  })

  it('reports the VM that no longer fits', () => {
    const results = placeBatch([vm({ resources: quarterHost }), vm({ resources: { vcpus: 1, memoryBytes: 60 * GIB, diskBytes: 0 } })], [host('a')])
    expect(results[1]?.summary).toBe('no host fits: 1 lacks memory (need 61440 MiB, most free 49152 MiB)')
  })

  it('samples one shared pool of d + 4·m hosts above the threshold', () => {
    const view = Array.from({ length: 500 }, (_, i) => host(`h${i}`))
    const results = placeBatch([vm({ seed: 'x' }), vm({ seed: 'y' })], view, { sampleAbove: 100, sampleSize: 10 })
    expect(results.map((r) => [r.sampled, r.examined])).toEqual([[true, 18], [true, 18]])
    expect(results[1]?.chosen?.hostId).toBe(results[0]?.chosen?.hostId) // binpack: the second VM joins the first
  })

  it('is empty for no requests and matches placeVm for one', () => {
    expect(placeBatch([], [host('a')])).toEqual([])
    const view = [host('a'), host('b'), host('c')]
    expect(placeBatch([vm()], view)[0]?.chosen?.hostId).toBe(placeVm(vm(), view).chosen?.hostId)
  })
})
