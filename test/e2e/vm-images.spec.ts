import { createHash, randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureGuest, killQemusUnder, lastCounter, meshvirt, meshvirtOn, pollUntil, startAgentCluster, waitForSerial, type AgentProcess, type TestGuest } from '@meshvirt/testkit'

interface Holder { hostId: string, state: string, seq: number, sentBytes: number, lastError: string }
interface VmJson { id: string, name: string, owner: string, state: string, lastMigration?: { diskBytes: number }, replication?: { holders: Holder[] } }
interface ImageJson { ref: string, digest: string, sizeBytes: number, holders: Array<{ hostname: string, chunksHeld: number }>, chunkCount: number, usedBy: string[] }

const MIB = 2 ** 20
/** The counter the test guest finds in the first 32 bytes of its disk and prints at boot (scripts/guest/init). */
const BASE_COUNTER = 4242

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

/** The VM's first replica holder once it is in sync and has been sent something, as `owner` shows it. */
async function holderInSync (owner: AgentProcess, vm: string, timeoutMs: number, what: string): Promise<Holder> {
  return await pollUntil(async () => {
    const h = (JSON.parse(await meshvirtOn(owner, ['vm', 'show', vm, '--json'])) as VmJson).replication?.holders[0]
    return h?.state === 'in-sync' && h.sentBytes > 0 ? h : undefined
  }, { timeoutMs, what })
}

// Real agent processes and a real QEMU guest whose disk is an overlay on a library image: imported at
// host-1 only, asked of host-2, run on host-3 (which fetches it), then live-migrated to host-2 (which
// fetches it too). The guest proves it reads the base: it prints the counter the image holds.
describe('VMs from the image library, end to end', () => {
  let dir: string
  let guest: TestGuest
  let agents: AgentProcess[] = []
  let image: Buffer

  beforeAll(async () => {
    guest = await ensureGuest()
    dir = await mkdtemp(join(tmpdir(), 'mv-img-'))
    const images = join(dir, 'images')
    await mkdir(images)
    // 6.5 MiB raw: the guest's counter at the start, random bytes after (real bytes to move).
    image = Buffer.concat([Buffer.from(`MESHVIRT-COUNTER ${BASE_COUNTER}`.padEnd(32)), randomBytes(6.5 * MIB - 32)])
    await writeFile(join(images, 'base.raw'), image)
    await meshvirt(['cluster', 'init', '--out', join(dir, 'cluster.key')])
    // One copy: the library's own copying (to keep two) would race the VM's fetch to host-3 and make
    // what this test watches depend on timing (CI: host-3 held a copy before the create, so the VM's
    // start fetched nothing and told no event). Copies are tested in test/integration/images.spec.ts.
    agents = (await startAgentCluster(dir, join(dir, 'cluster.key'), 3, () => ['--image-dir', guest.dir, '--image-dir', images, '--image-copies', '1'])).agents
  }, 240_000)

  afterAll(async () => {
    await Promise.all(agents.map(async (a) => { await a.stop() }))
    for (const i of [1, 2, 3]) await killQemusUnder(join(dir, `host-${i}`))
    await rm(dir, { recursive: true, force: true })
  })

  it('imported on host-1, created through host-2 onto host-3: host-3 fetches it (verified) and the guest boots from its overlay; migrated to host-2, it runs on', async () => {
    const [h1, h2, h3] = agents as [AgentProcess, AgentProcess, AgentProcess]
    const imported = JSON.parse(await meshvirtOn(h1, ['image', 'import', join(dir, 'images', 'base.raw'), '--name', 'base', '--json'])) as ImageJson
    expect(imported).toMatchObject({ ref: 'base:latest', digest: `sha256:${sha256(image)}`, sizeBytes: image.length, chunkCount: 7 })
    await pollUntil(async () => (JSON.parse(await meshvirtOn(h2, ['image', 'ls', '--json'])) as ImageJson[]).some((i) => i.ref === 'base:latest'), { timeoutMs: 15_000, what: 'host-2 to know the image' })

    const vm = JSON.parse(await meshvirtOn(h2, ['vm', 'create', '--name', 'img-1', '--memory', '128M', '--disk', '32M', '--image', 'base', '--host', 'host-3',
      '--kernel', guest.kernel, '--initrd', guest.initrd, '--cmdline', guest.cmdline, '--json'])) as VmJson
    expect(vm.owner).toBe(h3.hostId)
    const serial3 = join(h3.dataDir, 'vms', vm.id, 'serial.log')
    const found = await waitForSerial(serial3, /MESHVIRT-DISK (\d+|none)/, 120_000)
    expect(found[1], 'the guest reads the library image through its overlay').toBe(String(BASE_COUNTER))
    // host-3's copy is the image, byte for byte; the VM's disk reads through it.
    const copy = join(h3.dataDir, 'images', sha256(image), 'image')
    expect(sha256(await readFile(copy))).toBe(sha256(image))
    expect((await stat(join(h3.dataDir, 'vms', vm.id, 'vda.qcow2'))).size).toBeLessThan(image.length)
    await pollUntil(async () => {
      const shown = JSON.parse(await meshvirtOn(h1, ['image', 'show', 'base', '--json'])) as ImageJson
      const full = shown.holders.filter((h) => h.chunksHeld === shown.chunkCount).map((h) => h.hostname)
      return full.includes('host-1') && full.includes('host-3') && shown.usedBy.includes(vm.id)
    }, { timeoutMs: 15_000, what: 'the gossip to show host-3 holding the image for the VM' })
    expect(await meshvirtOn(h2, ['vm', 'show', 'img-1'])).toMatch(/boot:\s+image base:latest \(sha256:[0-9a-f]{12}\), kernel /)
    // The fetch is in the cluster's event stream, told by host-3.
    await pollUntil(async () => (JSON.parse(await meshvirtOn(h1, ['events', '--vm', vm.id, '--json'])) as Array<{ kind: string, hostId: string, message: string }>)
      .some((e) => e.kind === 'image-fetched' && e.hostId === h3.hostId && /image base:latest .* fetched: \d+ bytes in [\d.]+ s, every chunk verified/.test(e.message)), { timeoutMs: 30_000, what: 'an image-fetched event from host-3' })

    // Live migration: host-2 fetches the base before the guest arrives; the guest counts on.
    await pollUntil(async () => await lastCounter(serial3) > BASE_COUNTER, { timeoutMs: 60_000, what: 'the guest to count from the disk\'s value' })
    const moved = JSON.parse(await meshvirtOn(h1, ['vm', 'migrate', 'img-1', '--to', 'host-2', '--json'])) as VmJson
    expect(moved.owner).toBe(h2.hostId)
    // Only the VM's own layer crossed: the overlay's few written clusters, not the 6.5 MiB base.
    const shown = JSON.parse(await meshvirtOn(h2, ['vm', 'show', 'img-1', '--json'])) as VmJson
    expect(shown.lastMigration?.diskBytes).toBeGreaterThan(0)
    expect(shown.lastMigration?.diskBytes).toBeLessThan(image.length / 4)
    expect(sha256(await readFile(join(h2.dataDir, 'images', sha256(image), 'image')))).toBe(sha256(image))
    const serial2 = join(h2.dataDir, 'vms', vm.id, 'serial.log')
    const n = await pollUntil(async () => { const c = await lastCounter(serial2); return c > BASE_COUNTER ? c : undefined }, { timeoutMs: 30_000, what: 'the guest to count on host-2' })
    await pollUntil(async () => await lastCounter(serial2) > n, { timeoutMs: 15_000, what: 'the guest to keep counting on host-2' })
    // The disk as the guest sees it on host-2 (overlay + base): its counter, then the base's bytes, intact.
    await meshvirtOn(h2, ['vm', 'stop', 'img-1'])
    const flat = join(dir, 'flat.raw')
    execFileSync('qemu-img', ['convert', '-O', 'raw', join(h2.dataDir, 'vms', vm.id, 'vda.qcow2'), flat])
    const seen = await readFile(flat)
    expect(seen.subarray(0, 17).toString()).toBe('MESHVIRT-COUNTER ')
    expect(sha256(seen.subarray(32, image.length))).toBe(sha256(image.subarray(32)))
    const size = (await stat(serial2)).size
    await meshvirtOn(h2, ['vm', 'start', 'img-1'])
    const again = await waitForSerial(serial2, /MESHVIRT-DISK (\d+)/, 120_000, size)
    expect(Number(again[1])).toBeGreaterThan(BASE_COUNTER)
    await meshvirtOn(h2, ['vm', 'delete', 'img-1'])
  }, 400_000)

  it('a VM with a guest config gets a cidata CD-ROM (instance-id = its id, its hostname and key) that the guest reads; a migration\'s destination rebuilds it byte for byte', async () => {
    const [h1, h2] = agents as [AgentProcess, AgentProcess, AgentProcess]
    const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMeshvirtTestKeyMeshvirtTestKeyMeshvirtTe test@meshvirt'
    await writeFile(join(dir, 'id.pub'), key + '\n')
    await writeFile(join(dir, 'user-data'), '#cloud-config\npackages: [htop]\n')
    const vm = JSON.parse(await meshvirtOn(h2, ['vm', 'create', '--name', 'seeded', '--memory', '128M', '--disk', '32M', '--image', 'base', '--host', 'host-1',
      '--hostname', 'web-seeded', '--ssh-key', join(dir, 'id.pub'), '--user-data', join(dir, 'user-data'),
      '--kernel', guest.kernel, '--initrd', guest.initrd, '--cmdline', guest.cmdline, '--json'])) as VmJson
    const serial1 = join(h1.dataDir, 'vms', vm.id, 'serial.log')
    await waitForSerial(serial1, /MESHVIRT-READY/, 120_000)
    // What the guest read from its CD-ROM at boot (scripts/guest/init prints one line per fact).
    await waitForSerial(serial1, /MESHVIRT-SEED done/, 60_000)
    const facts = Object.fromEntries([...(await readFile(serial1, 'utf8')).matchAll(/MESHVIRT-SEED ([a-z0-9-]+)=(\S*)/g)].map((m) => [m[1], m[2]]))
    expect(facts).toEqual({ 'instance-id': vm.id, hostname: 'web-seeded', keys: '1', 'user-data-sha256': sha256(await readFile(join(dir, 'user-data'))) })
    const iso1 = join(h1.dataDir, 'vms', vm.id, 'seed.iso')
    // Its files, read back from the ISO the agent wrote (xorriso, the tool that wrote it).
    for (const f of ['meta-data', 'user-data']) execFileSync('xorriso', ['-osirrox', 'on', '-indev', iso1, '-extract', `/${f}`, join(dir, `seed-${f}`)], { stdio: 'ignore' })
    const meta = await readFile(join(dir, 'seed-meta-data'), 'utf8')
    expect(meta).toMatch(new RegExp(`instance-id: "?${vm.id}"?`))
    expect(meta).toMatch(/local-hostname: "?web-seeded"?/)
    expect(meta).toContain(key)
    expect(await readFile(join(dir, 'seed-user-data'), 'utf8')).toBe('#cloud-config\npackages: [htop]\n')
    // The running QEMU has it as its CD-ROM.
    expect(await readFile(`/proc/${(await readFile(join(h1.dataDir, 'vms', vm.id, 'qemu.pid'), 'utf8')).trim()}/cmdline`, 'utf8')).toContain('seed.iso')
    const before = sha256(await readFile(iso1))
    await meshvirtOn(h1, ['vm', 'migrate', 'seeded', '--to', 'host-2'])
    expect(sha256(await readFile(join(h2.dataDir, 'vms', vm.id, 'seed.iso')))).toBe(before)
    const serial2 = join(h2.dataDir, 'vms', vm.id, 'serial.log')
    const n = await pollUntil(async () => { const c = await lastCounter(serial2); return c > 0 ? c : undefined }, { timeoutMs: 30_000, what: 'the seeded guest to count on host-2' })
    await pollUntil(async () => await lastCounter(serial2) > n, { timeoutMs: 15_000, what: 'the seeded guest to keep counting' })
    expect(await meshvirtOn(h2, ['vm', 'show', 'seeded'])).toMatch(/guest:\s+hostname web-seeded, 1 SSH key\(s\), user-data 31 bytes/)
    await meshvirtOn(h2, ['vm', 'delete', 'seeded'])
  }, 300_000)

  it('a replicated VM on a library image: the holder fetches the image and gets only the VM\'s layer; its replica reads as the guest\'s disk', async () => {
    const [h1, h2, h3] = agents as [AgentProcess, AgentProcess, AgentProcess]
    // An image only host-1 has (the other cases' image is on every host by now).
    const other = Buffer.concat([Buffer.from(`MESHVIRT-COUNTER ${BASE_COUNTER}`.padEnd(32)), randomBytes(4 * MIB - 32)])
    const file = join(dir, 'images', 'other.raw')
    await writeFile(file, other)
    await meshvirtOn(h1, ['image', 'import', file, '--name', 'other'])
    await pollUntil(async () => (JSON.parse(await meshvirtOn(h3, ['image', 'ls', '--json'])) as ImageJson[]).some((i) => i.ref === 'other:latest'), { timeoutMs: 15_000, what: 'host-3 to know the image' })
    // Its guest writes only its counter (the first 32 bytes of the disk).
    const vm = JSON.parse(await meshvirtOn(h2, ['vm', 'create', '--name', 'img-rep', '--memory', '128M', '--disk', '32M', '--image', 'other', '--host', 'host-1',
      '--replicas', '1', '--rpo', '4s', '--kernel', guest.kernel, '--initrd', guest.initrd, '--cmdline', guest.cmdline, '--json'])) as VmJson
    await waitForSerial(join(h1.dataDir, 'vms', vm.id, 'serial.log'), /MESHVIRT-DISK 4242\b/, 120_000)
    // In sync with a point taken after the guest wrote its counter (the first points may hold nothing).
    const synced = await holderInSync(h1, 'img-rep', 90_000, 'the replica in sync with the guest\'s writes')
    const holder = [h2, h3].find((a) => a.hostId === synced.hostId) as AgentProcess
    expect(holder).toBeDefined()
    // The holder fetched the image for the replica (the library keeps one copy: nothing else asked it to).
    expect(sha256(await readFile(join(holder.dataDir, 'images', sha256(other), 'image')))).toBe(sha256(other))
    // Only the layer crossed: the counter's cluster, not the 4 MiB image.
    console.log(`replica on a library image: ${synced.sentBytes} bytes sent to ${holder.dataDir} for a ${other.length}-byte image (point ${synced.seq})`)
    expect(synced.sentBytes).toBeLessThan(other.length / 4)
    const replica = await readFile(join(holder.dataDir, 'replicas', vm.id, 'vda.raw'))
    expect(replica.length).toBe(32 * MIB)
    expect(replica.subarray(0, 17).toString()).toBe('MESHVIRT-COUNTER ')
    expect(sha256(replica.subarray(32, other.length))).toBe(sha256(other.subarray(32)))
    expect(replica.subarray(other.length).every((b) => b === 0)).toBe(true)
    await meshvirtOn(h2, ['vm', 'delete', 'img-rep'])
  }, 300_000)

  it('a holder that cannot get the base image is sent the disks whole; its replica still reads as the guest\'s disk', async () => {
    const [h1, h2] = agents as [AgentProcess, AgentProcess, AgentProcess]
    const original = Buffer.concat([Buffer.from(`MESHVIRT-COUNTER ${BASE_COUNTER}`.padEnd(32)), randomBytes(4 * MIB - 32)])
    const file = join(dir, 'images', 'unfetchable.raw')
    await writeFile(file, original)
    const imported = JSON.parse(await meshvirtOn(h1, ['image', 'import', file, '--name', 'unfetchable', '--json'])) as ImageJson
    // host-1's only copy goes bad past what the guest reads: every chunk a fetcher asks of it
    // there fails its digest, so no other host can get the image (host-1 keeps serving the VM).
    const stored = join(h1.dataDir, 'images', sha256(original), 'image')
    const damaged = Buffer.from(original)
    randomBytes(MIB).copy(damaged, 3 * MIB)
    await writeFile(stored, damaged)
    await pollUntil(async () => (JSON.parse(await meshvirtOn(h2, ['image', 'ls', '--json'])) as ImageJson[]).some((i) => i.ref === 'unfetchable:latest'), { timeoutMs: 15_000, what: 'host-2 to know the image' })
    const vm = JSON.parse(await meshvirtOn(h2, ['vm', 'create', '--name', 'img-whole', '--memory', '128M', '--disk', '32M', '--image', 'unfetchable', '--host', 'host-1',
      '--replicas', '1', '--rpo', '4s', '--kernel', guest.kernel, '--initrd', guest.initrd, '--cmdline', guest.cmdline, '--json'])) as VmJson
    await waitForSerial(join(h1.dataDir, 'vms', vm.id, 'serial.log'), /MESHVIRT-DISK 4242\b/, 120_000)
    // The holder tries the image, gives up once no holder serves good bytes (30 s without progress),
    // refuses the layer alone, and the owner sends whole disks.
    const synced = await holderInSync(h1, 'img-whole', 150_000, 'the replica in sync, sent whole')
    const holder = agents.find((a) => a.hostId === synced.hostId) as AgentProcess
    expect(holder).toBeDefined()
    expect(holder).not.toBe(h1)
    await expect(stat(join(holder.dataDir, 'images', imported.digest.slice('sha256:'.length), 'image')), 'the holder never got the image').rejects.toThrow()
    console.log(`replica with no base at the holder: ${synced.sentBytes} bytes sent for a ${original.length}-byte image (point ${synced.seq})`)
    // What crossed is the disk as the guest reads it, base included: more than the image's good part.
    expect(synced.sentBytes).toBeGreaterThan(3 * MIB)
    const replica = await readFile(join(holder.dataDir, 'replicas', vm.id, 'vda.raw'))
    expect(replica.length).toBe(32 * MIB)
    expect(replica.subarray(0, 17).toString()).toBe('MESHVIRT-COUNTER ')
    expect(sha256(replica.subarray(32, damaged.length)), 'the replica holds the base as the owner\'s guest reads it').toBe(sha256(damaged.subarray(32)))
    expect(replica.subarray(damaged.length).every((b) => b === 0)).toBe(true)
    await meshvirtOn(h2, ['vm', 'delete', 'img-whole'])
  }, 300_000)
})
