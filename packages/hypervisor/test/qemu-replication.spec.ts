/**
 * Replication points of a running test guest under TCG: a full point, then incrementals that hold
 * only what the guest wrote since (its counter block and the disk_kib workload), read back through
 * openPoint; a killed QEMU leaves an inconsistent bitmap, so the next point must be full.
 */
import { randomBytes } from 'node:crypto'
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { QemuHypervisor, type PointData, type VmSpec } from '../src/index.js'
import { ensureGuest, killQemusUnder, lastCounter, waitForSerial, type TestGuest } from '@meshvirt/testkit'

let guest: TestGuest
let root: string
const drivers: QemuHypervisor[] = []

function spec (id: string): VmSpec {
  return {
    id, vcpus: 1, memoryMiB: 128,
    boot: { kind: 'kernel', kernel: guest.kernel, initrd: guest.initrd, cmdline: `${guest.cmdline} meshvirt.disk_kib=64` },
    disks: [{ name: 'vda', sizeMiB: 32 }]
  }
}

beforeAll(async () => {
  guest = await ensureGuest()
  root = await mkdtemp(join(tmpdir(), 'mv-rep-'))
}, 240_000)

afterEach(async () => {
  for (const hv of drivers.splice(0)) await hv.close()
  await killQemusUnder(root)
})

afterAll(async () => { await rm(root, { recursive: true, force: true }) })

describe('QEMU replication points (TCG)', () => {
  it('takes a full point, then incrementals of only the changed clusters, and needs a full one after a kill', async () => {
    const hv = new QemuHypervisor({ dataDir: root, accel: 'tcg', imageDirs: [guest.dir] })
    drivers.push(hv)
    const vm = await hv.create(spec('rep'))
    await hv.start('rep')
    await waitForSerial(vm.paths.serialLog, /MESHVIRT-COUNTER 3\b/, 45_000)
    const { replication } = hv

    await expect(replication.takePoint('rep', { kind: 'incremental' })).rejects.toMatchObject({ code: 'ERR_REPLICATION_NEEDS_FULL' })
    expect((await replication.startReplication('rep')).needsFull).toBe(true)
    // Data far from the guest's own writes, to be zeroed later (as a discard or a zero write would).
    const qmp = await hv.monitor('rep')
    // HMP qemu-io through the guest's own device (its virtio backend): the node alone refuses a second writer.
    const qemuIo = async (cmd: string): Promise<void> => {
      const out = await qmp.execute<string>('human-monitor-command', { 'command-line': `qemu-io -d /machine/peripheral/vda/virtio-backend "${cmd}"` })
      // Its report goes to QEMU's stdout; the monitor answers only errors.
      if (/error|conflict|denied/i.test(out)) throw new Error(`qemu-io ${cmd}: ${out}`)
    }
    await qemuIo('write -P 0x33 24M 128k')
    const full = await replication.takePoint('rep', { kind: 'full' })
    expect(full).toMatchObject({ seq: 1, kind: 'full', baseSeq: 0, bytes: 32 * 1024 * 1024 })
    const fullData = await replication.openPoint('rep', 1)
    expect(fullData.extents.some((e) => e.offset <= 24 * 1024 * 1024 && e.offset + e.length >= 24 * 1024 * 1024 + 128 * 1024 && !e.zero)).toBe(true)
    expect(Buffer.from(await fullData.read('vda', 24 * 1024 * 1024, 4)).toString('hex')).toBe('33333333')
    const head = await fullData.read('vda', 0, 32)
    expect(Buffer.from(head).toString()).toMatch(/^MESHVIRT-COUNTER \d+/)
    await fullData.close()

    await qemuIo('write -z 24M 128k')
    const seen = await lastCounter(vm.paths.serialLog)
    await waitForSerial(vm.paths.serialLog, new RegExp(`MESHVIRT-COUNTER ${seen + 3}\\b`), 15_000)
    const inc = await replication.takePoint('rep', { kind: 'incremental' })
    expect(inc).toMatchObject({ seq: 2, kind: 'incremental', baseSeq: 1 })
    expect(inc.bytes).toBeGreaterThan(0)
    expect(inc.bytes).toBeLessThan(4 * 1024 * 1024)
    expect(inc.dirtyBytes).toBeGreaterThanOrEqual(inc.bytes - 64 * 1024 * 4)
    const data = await replication.openPoint('rep', 2)
    expect(data.extents[0]).toMatchObject({ disk: 'vda', offset: 0, zero: false })
    // A region zeroed since the full point is shipped as a zero extent, not skipped.
    expect(data.extents).toContainEqual({ disk: 'vda', offset: 24 * 1024 * 1024, length: 128 * 1024, zero: true })
    const counter = Number(/MESHVIRT-COUNTER (\d+)/.exec(Buffer.from(await data.read('vda', 0, 32)).toString())?.[1])
    expect(counter).toBeGreaterThanOrEqual(seen + 3)
    await data.close()
    console.log(`points: full ${full.bytes} B in ${full.durationMs} ms (transaction ${full.transactionMs} ms); incremental ${inc.bytes} B (${inc.dirtyBytes} dirty) in ${inc.durationMs} ms (transaction ${inc.transactionMs} ms)`)

    // A seed copy (a full point for a new holder) leaves the bitmap counting from point 2: the next
    // incremental still applies on point 2 and holds what was written before the seed copy too.
    await qemuIo('write -P 0x44 20M 64k')
    const seedPoint = await replication.takePoint('rep', { kind: 'full', seed: true })
    expect(seedPoint).toMatchObject({ seq: 3, kind: 'full', seed: true, baseSeq: 0 })
    expect((await replication.replicationStatus('rep')).bitmapBase).toBe(2)
    const afterSeed = await replication.takePoint('rep', { kind: 'incremental' })
    expect(afterSeed).toMatchObject({ seq: 4, kind: 'incremental', baseSeq: 2, seed: false })
    const afterData = await replication.openPoint('rep', 4)
    expect(afterData.extents.some((e) => e.offset <= 20 * 1024 * 1024 && e.offset + e.length >= 20 * 1024 * 1024 + 64 * 1024 && !e.zero)).toBe(true)
    expect(Buffer.from(await afterData.read('vda', 20 * 1024 * 1024, 4)).toString('hex')).toBe('44444444')
    await afterData.close()
    expect((await replication.replicationStatus('rep')).bitmapBase).toBe(4)

    await replication.releasePoint('rep', 1)
    expect((await replication.replicationStatus('rep')).points).toEqual([2, 3, 4])
    expect((await replication.replicationStatus('rep')).needsFull).toBe(false)

    // SIGKILL: the persistent bitmap stays marked in use in the qcow2 and loads as inconsistent.
    await hv.kill('rep')
    await hv.start('rep')
    await waitForSerial(vm.paths.serialLog, /MESHVIRT-DISK \d+/, 45_000)
    expect((await replication.replicationStatus('rep')).needsFull).toBe(true)
    await expect(replication.takePoint('rep', { kind: 'incremental' })).rejects.toMatchObject({ code: 'ERR_REPLICATION_NEEDS_FULL' })
    // A seed copy is not possible without a usable bitmap: it is a plain full point (the bitmap restarts).
    const again = await replication.takePoint('rep', { kind: 'full', seed: true })
    expect(again).toMatchObject({ seq: 5, seed: false })
    expect((await replication.takePoint('rep', { kind: 'incremental' })).baseSeq).toBe(5)
    await replication.stopReplication('rep')
    expect((await replication.replicationStatus('rep')).active).toBe(false)
    await hv.kill('rep')
  }, 150_000)

  it('a disk on a shared base: a full point holds only the VM\'s layer (zeroed base regions included); `whole` copies it all', async () => {
    // The base: the guest's disk counter at the start, 3 MiB of random bytes after.
    // Outside the data dir: the driver refuses a boot source among its own files.
    const baseDir = await mkdtemp(join(tmpdir(), 'mv-rep-base-'))
    const base = Buffer.concat([Buffer.from('MESHVIRT-COUNTER 4242'.padEnd(32)), randomBytes(3 * 1024 * 1024 - 32)])
    const basePath = join(baseDir, 'base.raw')
    await writeFile(basePath, base)
    const hv = new QemuHypervisor({ dataDir: root, accel: 'tcg', imageDirs: [guest.dir, baseDir] })
    drivers.push(hv)
    // No disk_kib workload: between the two points the guest may write only its counter block, which
    // the comparison below leaves out (a tick of the workload would land 64 KiB past 1 MiB).
    const boot = { kind: 'kernel' as const, kernel: guest.kernel, initrd: guest.initrd, cmdline: guest.cmdline }
    const vm = await hv.create({ ...spec('layered'), boot, disks: [{ name: 'vda', sizeMiB: 16, base: basePath, sharedBase: true }] })
    await hv.start('layered')
    await waitForSerial(vm.paths.serialLog, /MESHVIRT-COUNTER 4245\b/, 45_000)
    const qmp = await hv.monitor('layered')
    const qemuIo = async (cmd: string): Promise<void> => {
      await qmp.execute<string>('human-monitor-command', { 'command-line': `qemu-io -d /machine/peripheral/vda/virtio-backend "${cmd}"` })
    }
    await qemuIo('write -P 0x33 8M 64k')
    // Zeros over the base's bytes: the layer must say so, or the holder would keep the base's.
    await qemuIo('write -z 1M 64k')
    await hv.replication.startReplication('layered')
    const top = await hv.replication.takePoint('layered', { kind: 'full' })
    expect(top).toMatchObject({ seq: 1, kind: 'full', disks: [expect.objectContaining({ name: 'vda', onBase: true })] })
    const topData = await hv.replication.openPoint('layered', 1)
    expect(topData.extents).toContainEqual({ disk: 'vda', offset: 1024 * 1024, length: 64 * 1024, zero: true })
    expect(topData.extents.some((e) => e.offset <= 8 * 1024 * 1024 && e.offset + e.length >= 8 * 1024 * 1024 + 64 * 1024 && !e.zero)).toBe(true)
    // Nothing of the base the guest never wrote (2 MiB lies inside the base, untouched).
    expect(topData.extents.some((e) => e.offset <= 2 * 1024 * 1024 && e.offset + e.length > 2 * 1024 * 1024)).toBe(false)
    const whole = await hv.replication.takePoint('layered', { kind: 'full', whole: true, seed: true })
    expect(whole.disks[0]?.onBase).toBeUndefined()
    const wholeData = await hv.replication.openPoint('layered', 2)
    // Applied on the base, the layer reads as the whole copy does (but for the guest's counter block).
    const fromTop = await applied(topData, Buffer.concat([base, Buffer.alloc(16 * 1024 * 1024 - base.length)]))
    const fromWhole = await applied(wholeData, Buffer.alloc(16 * 1024 * 1024))
    expect(firstDifference(fromTop, fromWhole, 64 * 1024)).toBe('none')
    expect(fromTop.subarray(1024 * 1024, 1024 * 1024 + 64 * 1024).every((b) => b === 0)).toBe(true)
    const topBytes = dataBytesOf(topData)
    const wholeBytes = dataBytesOf(wholeData)
    expect(topBytes).toBeLessThan(1024 * 1024)
    expect(wholeBytes).toBeGreaterThanOrEqual(base.length - 64 * 1024)
    console.log(`shared base: full point ${topBytes} data bytes on the base vs ${wholeBytes} whole (${(topBytes / wholeBytes).toFixed(4)})`)
    await topData.close()
    await wholeData.close()
    await hv.kill('layered')
    await rm(baseDir, { recursive: true, force: true })
  }, 120_000)

  it('after the disk grew online (vm resize), the next incremental point has the new size', async () => {
    const hv = new QemuHypervisor({ dataDir: root, accel: 'tcg', imageDirs: [guest.dir] })
    drivers.push(hv)
    await hv.create(spec('grow'))
    await hv.start('grow')
    await hv.replication.startReplication('grow')
    expect(await hv.replication.takePoint('grow', { kind: 'full' })).toMatchObject({ seq: 1, kind: 'full' })
    await hv.resize('grow', { disks: { vda: 64 } })
    const inc = await hv.replication.takePoint('grow', { kind: 'incremental' })
    expect(inc).toMatchObject({ seq: 2, kind: 'incremental', baseSeq: 1 })
    expect(inc.disks).toEqual([expect.objectContaining({ name: 'vda', sizeBytes: 64 * 1024 * 1024 })])
    // Its extents lie within the grown disk.
    const data = await hv.replication.openPoint('grow', 2)
    expect(data.extents.every((e) => e.disk === 'vda' && e.offset + e.length <= 64 * 1024 * 1024)).toBe(true)
    await data.close()
  })

  it('destroys a VM while a point is being taken: the point fails, the VM directory is gone and stays gone', async () => {
    const hv = new QemuHypervisor({ dataDir: root, accel: 'tcg', imageDirs: [guest.dir] })
    drivers.push(hv)
    const vm = await hv.create({ ...spec('doomed'), disks: [{ name: 'vda', sizeMiB: 512 }] })
    await hv.start('doomed')
    await waitForSerial(vm.paths.serialLog, /MESHVIRT-COUNTER 2\b/, 45_000)
    await hv.replication.startReplication('doomed')
    // Fill part of the disk so the full copy takes a while under TCG.
    const qmp = await hv.monitor('doomed')
    for (let at = 16; at < 400; at += 64) {
      await qmp.execute('human-monitor-command', { 'command-line': `qemu-io -d /machine/peripheral/vda/virtio-backend "write -P 0x5a ${at}M 64M"` })
    }
    const order: string[] = []
    const point = hv.replication.takePoint('doomed', { kind: 'full' })
    const outcome = point.then(() => 'taken', (err: { code?: string }) => err.code ?? 'error').finally(() => order.push('point settled'))
    // The point is under way once its target file exists.
    const started = Date.now()
    while (!await access(join(vm.paths.dir, 'replica', '1-vda.qcow2')).then(() => true, () => false)) {
      if (Date.now() - started > 20_000) throw new Error('the point never started')
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    await hv.destroy('doomed')
    order.push('destroyed')
    // Nothing of the point may run after the removal (it would write into the directory again).
    expect(order).toEqual(['point settled', 'destroyed'])
    expect(['ERR_POINT_FAILED', 'taken']).toContain(await outcome)
    await new Promise((resolve) => setTimeout(resolve, 500))
    await expect(access(vm.paths.dir)).rejects.toMatchObject({ code: 'ENOENT' })
    await expect(hv.replication.takePoint('doomed', { kind: 'full' })).rejects.toMatchObject({ code: 'ERR_VM_NOT_FOUND' })
  }, 120_000)
})

/** `start` with the point's extents written over it (a holder's apply, in memory). */
async function applied (data: PointData, start: Buffer): Promise<Buffer> {
  const out = Buffer.from(start)
  for (const e of data.extents) {
    if (e.zero) out.fill(0, e.offset, e.offset + e.length)
    else out.set(await data.read(e.disk, e.offset, e.length), e.offset)
  }
  return out
}

function dataBytesOf (data: PointData): number {
  return data.extents.reduce((n, e) => n + (e.zero ? 0 : e.length), 0)
}

/** Where two images first differ from `from` on, as the 64 KiB block that holds it (for the failure message). */
function firstDifference (a: Buffer, b: Buffer, from: number): string {
  if (a.length !== b.length) return `lengths ${a.length} and ${b.length}`
  for (let at = from; at < a.length; at++) {
    if (a[at] !== b[at]) return `byte ${at} (the 64 KiB block at ${Math.floor(at / 65536) * 64} KiB)`
  }
  return 'none'
}
