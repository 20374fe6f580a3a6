import { describe, expect, it } from 'vitest'
import { pointExtents, SimHypervisor, type QemuMapEntry } from '../src/index.js'
import { findExtent } from '../src/backup/point-file-reader.js'

const entry = (start: number, length: number, flags: Partial<QemuMapEntry>): QemuMapEntry => ({ start, length, depth: 0, zero: false, data: false, ...flags })

describe('pointExtents (qemu-img map of a backup target → extents to ship)', () => {
  const map = [
    entry(0, 65536, { present: true, data: true, offset: 327680 }),
    entry(65536, 983040, { present: false, zero: true }),
    entry(1048576, 131072, { present: true, zero: true }),
    entry(1179648, 65536, { present: true, data: true, offset: 589824 }),
    entry(1245184, 4096, { depth: 1, present: true, data: true, offset: 0 })
  ]
  it.each([
    ['full: data only (the holder starts from zeros)', 'full' as const, [
      { disk: 'vda', offset: 0, length: 65536, zero: false, fileOffset: 327680 },
      { disk: 'vda', offset: 1179648, length: 65536, zero: false, fileOffset: 589824 }]],
    ['incremental: every allocated region, zeroed ones as zero extents', 'incremental' as const, [
      { disk: 'vda', offset: 0, length: 65536, zero: false, fileOffset: 327680 },
      { disk: 'vda', offset: 1048576, length: 131072, zero: true },
      { disk: 'vda', offset: 1179648, length: 65536, zero: false, fileOffset: 589824 }]]
  ])('%s', (_name, kind, expected) => {
    expect(pointExtents('vda', kind, map)).toEqual(expected)
  })

  it('refuses data without a host offset (compressed clusters cannot be read in place)', () => {
    expect(() => pointExtents('vda', 'full', [entry(0, 65536, { data: true })])).toThrow(/no host offset/)
  })

  it.each([[0, 0], [65535, 0], [65536, undefined], [1048576, 1048576], [1179647, 1048576], [1179648, 1179648], [2_000_000, undefined]])('findExtent(%i) starts at %s', (offset, start) => {
    const extents = pointExtents('vda', 'incremental', map)
    expect(findExtent(extents, offset)?.offset).toBe(start)
  })
})

describe('SimReplication', () => {
  it('ships what was written: full, then only the dirty blocks', async () => {
    const hv = new SimHypervisor()
    await hv.create({ id: 's', vcpus: 1, memoryMiB: 64, boot: { kind: 'disk' }, disks: [{ name: 'vda', sizeMiB: 4 }] })
    await hv.start('s')
    await hv.replication.write('s', 'vda', 0, Buffer.from('hello'))
    await expect(hv.replication.takePoint('s', { kind: 'incremental' })).rejects.toMatchObject({ code: 'ERR_REPLICATION_NEEDS_FULL' })
    const full = await hv.replication.takePoint('s', { kind: 'full' })
    expect(full).toMatchObject({ seq: 1, bytes: 65536 })
    await hv.replication.write('s', 'vda', 200_000, Buffer.from('world'))
    const inc = await hv.replication.takePoint('s', { kind: 'incremental' })
    expect(inc).toMatchObject({ seq: 2, baseSeq: 1, bytes: 65536 })
    const data = await hv.replication.openPoint('s', 2)
    expect(data.extents).toEqual([{ disk: 'vda', offset: 196608, length: 65536, zero: false }])
    expect(Buffer.from(await data.read('vda', 200_000, 5)).toString()).toBe('world')
    const first = await hv.replication.openPoint('s', 1)
    expect(Buffer.from(await first.read('vda', 0, 5)).toString()).toBe('hello')
  })
})
