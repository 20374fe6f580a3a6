/** Copies and cache, table-tested: who asks for a copy, where it goes, what a host lets go. */
import { describe, expect, it } from 'vitest'
import type { ImageHolding } from '@meshvirt/mesh'
import { catalogueOf } from '../../src/images/catalogue.js'
import { copiesToMake, imagesToEvict, type CachedImage, type UpkeepHost } from '../../src/images/image-upkeep.js'

const D = 'sha256:' + 'd'.repeat(64)
const held = (over: Partial<ImageHolding> = {}): ImageHolding => ({ digest: D, sizeBytes: 100, format: 'raw', refs: ['x:latest'], chunkCount: 8, have: new Uint8Array(), namedAtMs: 1, usedBy: [], ...over })
const h = (hostId: string, labels: Record<string, string> = {}, alive = true, active = true): UpkeepHost => ({ hostId, alive, active, labels })
function cat (holders: Record<string, ImageHolding | undefined>, dead: string[] = []): ReturnType<typeof catalogueOf> {
  return catalogueOf(Object.entries(holders).map(([hostId, image]) => ({ hostId, hostname: hostId, alive: !dead.includes(hostId), images: image === undefined ? [] : [image], imageTombstones: [] })))
}

describe('copiesToMake', () => {
  it('the lowest live full holder asks; the others do not', () => {
    const c = cat({ a: held(), b: undefined, c: undefined })
    const hosts = [h('a'), h('b'), h('c')]
    expect(copiesToMake('a', c, hosts, 2)).toHaveLength(1)
    expect(copiesToMake('b', c, hosts, 2)).toEqual([])
  })

  it('enough copies (a fetch under way counts): nothing to do', () => {
    expect(copiesToMake('a', cat({ a: held(), b: held({ have: Uint8Array.of(1) }) }), [h('a'), h('b'), h('c')], 2)).toEqual([])
  })

  it('a dead holder does not count, and the next live holder decides', () => {
    const c = cat({ a: held(), b: held() }, ['a'])
    const hosts = [h('a', {}, false), h('b'), h('c')]
    expect(copiesToMake('b', c, hosts, 2)).toEqual([{ digest: D, target: 'c' }])
    expect(copiesToMake('a', c, hosts, 2)).toEqual([])
  })

  it('a copy goes to another failure domain first, never to a draining or dead host', () => {
    const hosts = [h('a', { zone: 'z1' }), h('b', { zone: 'z1' }), h('c', { zone: 'z2' }, true, false), h('d', { zone: 'z3' }), h('e', { zone: 'z4' }, false)]
    expect(copiesToMake('a', cat({ a: held() }), hosts, 2)).toEqual([{ digest: D, target: 'd' }])
  })

  it('three copies wanted, one held: two targets; unnamed images get none', () => {
    expect(copiesToMake('a', cat({ a: held() }), [h('a'), h('b'), h('c'), h('d')], 3)).toHaveLength(2)
    expect(copiesToMake('a', cat({ a: held({ refs: [] }) }), [h('a'), h('b')], 2)).toEqual([])
  })
})

describe('imagesToEvict', () => {
  const img = (digest: string, over: Partial<CachedImage> = {}): CachedImage => ({ digest, sizeBytes: 10, usedAtMs: 0, complete: true, users: 0, named: true, liveCopies: 3, ...over })

  it.each([
    ['unnamed and unused: gone, whatever the budget', [img('a', { named: false })], 1000, ['a']],
    ['unnamed but a VM here reads it: kept', [img('a', { named: false, users: 1 })], 0, []],
    ['named and within budget: kept', [img('a'), img('b')], 20, []],
    ['over budget: the least recently used go first, until within', [img('new', { usedAtMs: 9 }), img('old', { usedAtMs: 1 }), img('mid', { usedAtMs: 5 })], 15, ['old', 'mid']],
    ['over budget, but the library needs the copy: kept', [img('a', { liveCopies: 2 })], 0, []],
    ['a fetch under way is never evicted', [img('a', { named: false, complete: false })], 0, []]
  ] as Array<[string, CachedImage[], number, string[]]>)('%s', (_, images, budget, want) => {
    expect(imagesToEvict(images, budget, 2)).toEqual(want)
  })
})
