/**
 * Continuous replication of a real guest (TCG) between two libp2p nodes in one process: the test guest
 * writes its counter to disk every 200 ms (plus 64 KiB of disk per tick); a full point and then an
 * incremental every second are taken with QEMU's bitmap + blockdev-backup and shipped through
 * `/meshvirt/replica/1.0.0` into a holder dir. One transfer is cut mid-way and resumes. Then the owner's
 * QEMU is killed and a fresh QEMU boots from the holder's images: its disk shows the counter of the
 * last point shipped. Lag (point taken → applied on the holder) is measured for every point.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { QemuHypervisor, writeRawImage, type VmSpec } from '@meshvirt/hypervisor'
import { createMeshNode, generateClusterKey, generateIdentity, type MeshNode } from '@meshvirt/mesh'
import { ensureGuest, killQemusUnder, lastCounter, waitForSerial, type TestGuest } from '@meshvirt/testkit'
import { OutgoingPoint, ReplicaHolderService, shipPoint, TokenBucket, type BaseImages, type ShipResult } from '../src/replica/index.js'

const BOOT_TIMEOUT_MS = 45_000
const RPO_MS = 1000
const INCREMENTALS = 8
let guest: TestGuest
let root: string
const drivers: QemuHypervisor[] = []
const nodes: MeshNode[] = []
let holder: ReplicaHolderService | undefined
let other: ReplicaHolderService | undefined

function spec (id: string, base?: string): VmSpec {
  return {
    id, vcpus: 1, memoryMiB: 128,
    boot: { kind: 'kernel', kernel: guest.kernel, initrd: guest.initrd, cmdline: `${guest.cmdline} meshvirt.disk_kib=64` },
    disks: [{ name: 'vda', sizeMiB: 64, ...(base !== undefined ? { base } : {}) }]
  }
}

// LAN timing: a test cuts the connection on purpose, and under load the test preset's failure
// detector would then declare the peer dead and hang up on the resumed transfer.
async function node (bootstrap: string[] = []): Promise<MeshNode> {
  const n = await createMeshNode({ privateKey: (await generateIdentity()).privateKey, listen: ['/ip4/127.0.0.1/tcp/0'], clusterKey, clusterName: 'rq', timing: 'lan', bootstrap })
  nodes.push(n)
  return n
}
const clusterKey = generateClusterKey()

/** The counter the guest keeps in the first 32 bytes of its disk, as a point holds it. */
async function pointCounter (out: OutgoingPoint): Promise<number> {
  const text = Buffer.from(await out.data.read('vda', 0, 32)).toString()
  const m = /^MESHVIRT-COUNTER (\d+)/.exec(text)
  if (m === null) throw new Error(`no counter at the start of point ${out.header.seq}: ${JSON.stringify(text)}`)
  return Number(m[1])
}

function percentile (values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number
}

beforeAll(async () => {
  guest = await ensureGuest()
  root = await mkdtemp(join(tmpdir(), 'mv-rq-'))
}, 240_000)

afterEach(async () => {
  await holder?.stop()
  await other?.stop()
  for (const n of nodes.splice(0)) await n.stop()
  for (const hv of drivers.splice(0)) await hv.close()
  await killQemusUnder(join(root, 'owner'))
  await killQemusUnder(join(root, 'standby'))
})

afterAll(async () => { await rm(root, { recursive: true, force: true }) })

describe('replication of a running QEMU guest through the replica stream (TCG)', () => {
  it('ships a full point and incrementals, resumes a cut transfer, and boots from the holder at the last point', async () => {
    const owner = new QemuHypervisor({ dataDir: join(root, 'owner'), accel: 'tcg', imageDirs: [guest.dir] })
    drivers.push(owner)
    const vm = await owner.create(spec('db'))
    await owner.start('db')
    await waitForSerial(vm.paths.serialLog, /MESHVIRT-COUNTER 3\b/, BOOT_TIMEOUT_MS)

    const a = await node()
    const b = await node([a.multiaddrs()[0] as string])
    holder = new ReplicaHolderService(b.libp2p, { root: join(root, 'holder') })
    await holder.start()
    const bucket = new TokenBucket({ bytesPerSec: 16 * 1024 * 1024 })
    const ship = async (kind: 'full' | 'incremental', cutAt?: number): Promise<{ res: ShipResult, counter: number, out: OutgoingPoint }> => {
      const point = await owner.replication.takePoint('db', { kind })
      const out = new OutgoingPoint(await owner.replication.openPoint('db', point.seq), { epoch: 1, chunkBytes: 64 * 1024 })
      const counter = await pointCounter(out)
      let res: ShipResult
      if (cutAt !== undefined && out.header.chunkCount > cutAt + 1) {
        let cut: Promise<void> | undefined
        await expect(shipPoint(a.libp2p, b.hostId, out, { bucket, onChunk: (i) => { if (i === cutAt) cut ??= a.libp2p.hangUp(b.peerId) } }))
          .rejects.toMatchObject({ code: 'ERR_REPLICA_TRANSFER' })
        await cut
        res = await shipPoint(a.libp2p, b.hostId, out, { bucket })
        expect(res.resumedFrom).toBeGreaterThan(0)
        console.log(`point ${point.seq}: cut after chunk ${cutAt} of ${out.header.chunkCount}, resumed from ${res.resumedFrom}`)
      } else {
        res = await shipPoint(a.libp2p, b.hostId, out, { bucket })
      }
      await out.close()
      await owner.replication.releasePoint('db', point.seq)
      return { res, counter, out }
    }

    await owner.replication.startReplication('db')
    const t0 = performance.now()
    const full = await ship('full')
    const fullMs = performance.now() - t0
    expect(full.res.answer.position.seq).toBe(1)

    const lags: number[] = []
    const sizes: number[] = []
    let last = full
    for (let i = 0; i < INCREMENTALS; i++) {
      // Point i = 4 lets 2 s of writes pile up so its transfer has chunks to cut between.
      await new Promise((resolve) => setTimeout(resolve, i === 4 ? 2 * RPO_MS : RPO_MS))
      last = await ship('incremental', i === 4 ? 3 : undefined)
      expect(last.res.answer.position).toMatchObject({ epoch: 1, seq: 2 + i })
      lags.push(last.res.ackedAt - last.out.header.takenAt)
      sizes.push(last.out.header.dataBytes)
    }
    expect(last.counter).toBeGreaterThan(full.counter)
    const lagP50 = percentile(lags, 50)
    const lagP99 = percentile(lags, 99)
    console.log(`full point ${full.out.header.dataBytes} B shipped in ${fullMs.toFixed(0)} ms; incrementals ${Math.min(...sizes)}–${Math.max(...sizes)} B; lag p50 ${lagP50} ms, p99 ${lagP99} ms`)
    expect(lagP99).toBeLessThan(5000)

    // The owner dies; a fresh QEMU on another "host" boots from the holder's image (under a thin overlay).
    const serialBefore = await lastCounter(vm.paths.serialLog)
    await owner.kill('db')
    const images = await (await holder.replica('db')).images()
    expect(images.position.seq).toBe(1 + INCREMENTALS)
    const standby = new QemuHypervisor({ dataDir: join(root, 'standby'), accel: 'tcg', imageDirs: [guest.dir, join(root, 'holder')] })
    drivers.push(standby)
    const copy = await standby.create(spec('db', images.disks[0]?.path))
    await standby.start('db')
    const disk = await waitForSerial(copy.paths.serialLog, /MESHVIRT-DISK (\d+)/, BOOT_TIMEOUT_MS)
    console.log(`booted from the replica: MESHVIRT-DISK ${disk[1]}, last shipped point held ${last.counter}, the owner had printed ${serialBefore}`)
    expect(Number(disk[1])).toBeGreaterThanOrEqual(last.counter)
    expect(Number(disk[1])).toBeLessThanOrEqual(serialBefore)
    await standby.kill('db')
  }, 180_000)

  it('a VM on a shared base: the full point is its layer, the holder starts from its own copy of the base; a holder without it gets the disk whole', async () => {
    // The base (outside every data dir): the guest's disk counter at the start, 3 MiB of random bytes after.
    const baseDir = await mkdtemp(join(tmpdir(), 'mv-rq-base-'))
    const base = Buffer.concat([Buffer.from('MESHVIRT-COUNTER 4242'.padEnd(32)), randomBytes(3 * 1024 * 1024 - 32)])
    const basePath = join(baseDir, 'base.raw')
    await writeFile(basePath, base)
    const digest = `sha256:${createHash('sha256').update(base).digest('hex')}`
    const owner = new QemuHypervisor({ dataDir: join(root, 'owner'), accel: 'tcg', imageDirs: [guest.dir, baseDir] })
    drivers.push(owner)
    // Only its counter is written (the first 32 bytes): everything else must read as the base.
    const layered: VmSpec = {
      id: 'web', vcpus: 1, memoryMiB: 128, boot: { kind: 'kernel', kernel: guest.kernel, initrd: guest.initrd, cmdline: guest.cmdline },
      disks: [{ name: 'vda', sizeMiB: 16, base: basePath, sharedBase: true }]
    }
    const vm = await owner.create(layered)
    await owner.start('web')
    await waitForSerial(vm.paths.serialLog, /MESHVIRT-COUNTER 4245\b/, BOOT_TIMEOUT_MS)

    const a = await node()
    const b = await node([a.multiaddrs()[0] as string])
    const c = await node([a.multiaddrs()[0] as string])
    // The library, as a holder sees it: the first ask starts a fetch, the next finds the image here.
    const asked: string[] = []
    const bases: BaseImages = {
      want: (d) => { asked.push(d); return asked.length === 1 ? { state: 'fetching', detail: '0 of 1 chunks' } : { state: 'ready' } },
      materialize: async (d, path, sizeBytes) => { expect(d).toBe(digest); await writeRawImage(basePath, { format: 'raw', target: path, sizeBytes }) }
    }
    holder = new ReplicaHolderService(b.libp2p, { root: join(root, 'holder-b'), bases })
    await holder.start()
    // A holder with no image library: it refuses the layer, and gets the disk whole.
    other = new ReplicaHolderService(c.libp2p, { root: join(root, 'holder-c') })
    await other.start()

    await owner.replication.startReplication('web')
    const layer = await owner.replication.takePoint('web', { kind: 'full' })
    expect(layer.disks[0]?.onBase).toBe(true)
    const out = new OutgoingPoint(await owner.replication.openPoint('web', layer.seq), { epoch: 1, baseDigest: digest })
    expect(out.header.disks).toEqual([{ name: 'vda', sizeBytes: 16 * 1024 * 1024, baseDigest: digest }])
    const counter = await pointCounter(out)
    await expect(shipPoint(a.libp2p, b.hostId, out)).rejects.toMatchObject({ code: 'ERR_REPLICA_REFUSED', refusal: 'base-missing' })
    const shipped = await shipPoint(a.libp2p, b.hostId, out)
    expect(shipped.answer.position.seq).toBe(1)
    await expect(shipPoint(a.libp2p, c.hostId, out)).rejects.toMatchObject({ code: 'ERR_REPLICA_REFUSED', refusal: 'base-unavailable' })
    await out.close()

    const whole = await owner.replication.takePoint('web', { kind: 'full', whole: true, seed: true })
    expect(whole.disks[0]?.onBase).toBeUndefined()
    const wholeOut = new OutgoingPoint(await owner.replication.openPoint('web', whole.seq), { epoch: 1, baseDigest: digest })
    expect(wholeOut.header.disks[0]?.baseDigest).toBeUndefined()
    const copied = await shipPoint(a.libp2p, c.hostId, wholeOut)
    await wholeOut.close()
    console.log(`shared base: the layer shipped ${shipped.sentBytes} B, the whole disk ${copied.sentBytes} B (${(shipped.sentBytes / copied.sentBytes).toFixed(4)})`)
    expect(shipped.sentBytes).toBeLessThan(512 * 1024)
    expect(copied.sentBytes).toBeGreaterThanOrEqual(base.length - 64 * 1024)

    // Both replicas read as the guest's disk: its counter, then the base's bytes, then zeros.
    for (const service of [holder, other]) {
      const images = await (await service.replica('web')).images()
      const bytes = await readFile(images.disks[0]?.path as string)
      expect(bytes.length).toBe(16 * 1024 * 1024)
      expect(Number(/^MESHVIRT-COUNTER (\d+)/.exec(bytes.subarray(0, 32).toString())?.[1])).toBeGreaterThanOrEqual(counter)
      expect(sha256(bytes.subarray(32, base.length))).toBe(sha256(base.subarray(32)))
      expect(bytes.subarray(base.length).every((x) => x === 0)).toBe(true)
    }
    await owner.kill('web')

    // A standby boots from the holder that got only the layer.
    const images = await (await holder.replica('web')).images()
    const standby = new QemuHypervisor({ dataDir: join(root, 'standby'), accel: 'tcg', imageDirs: [guest.dir, join(root, 'holder-b')] })
    drivers.push(standby)
    const copy = await standby.create({ ...layered, disks: [{ name: 'vda', sizeMiB: 16, base: images.disks[0]?.path as string }] })
    await standby.start('web')
    const disk = await waitForSerial(copy.paths.serialLog, /MESHVIRT-DISK (\d+)/, BOOT_TIMEOUT_MS)
    expect(Number(disk[1])).toBeGreaterThanOrEqual(counter)
    await standby.kill('web')
    await rm(baseDir, { recursive: true, force: true })
  }, 180_000)
})

function sha256 (bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}
