import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ControlClient, vmView, type RunningAgent } from '@meshvirt/agent'
import { pollUntil } from '@meshvirt/testkit'
import { startInProcessCluster, type InProcessCluster } from '../support/in-process-cluster.js'

const MIB = 2 ** 20

async function call (a: RunningAgent, req: object): Promise<Awaited<ReturnType<ControlClient['call']>>> {
  return await new ControlClient(a.controlSocket).call(req, { timeoutMs: 60_000 })
}

async function failure (p: Promise<unknown>): Promise<{ code: string, message: string }> {
  try {
    await p
  } catch (err) {
    return { code: (err as { code?: string }).code ?? '', message: (err as Error).message }
  }
  throw new Error('expected the call to be refused')
}

function spec (name: string, image: string, host: string): object {
  return { name, resources: { vcpus: 1, memoryBytes: 128 * MIB, diskBytes: 64 * MIB }, boot: { library: { ref: image } }, host }
}

// The image library across 3 real agents in one process (real libp2p, claims, gossip and the chunk
// protocol, real files; the simulated hypervisor records the disk it was given).
describe('the image library across agents', () => {
  let cluster: InProcessCluster
  let images: string
  const agents = (): [RunningAgent, RunningAgent, RunningAgent] => cluster.agents as [RunningAgent, RunningAgent, RunningAgent]
  beforeAll(async () => {
    images = await mkdtemp(join(tmpdir(), 'mv-image-dir-'))
    // Raw: any bytes are a raw image. 3.5 MiB: four chunks, the last one short.
    await writeFile(join(images, 'one.raw'), randomBytes(3.5 * MIB))
    await writeFile(join(images, 'two.raw'), randomBytes(2 * MIB))
    cluster = await startInProcessCluster(Array.from({ length: 3 }, () => ({ vcpus: 16, memoryMiB: 16 * 1024 })), { imageDirs: [images] })
  }, 120_000)
  afterAll(async () => {
    await cluster?.stop()
    await rm(images, { recursive: true, force: true })
  })

  it('an image imported at one host is listed at every host; the same bytes again are a no-op', async () => {
    const [a, b] = agents()
    const first = (await call(a, { idempotencyKey: 'i1', importImage: { path: join(images, 'one.raw'), ref: 'one' } })).image
    expect(first).toMatchObject({ ref: 'one:latest', format: 'raw', sizeBytes: 3.5 * MIB, chunkCount: 4, imported: true })
    expect(first?.digest).toMatch(/^sha256:[0-9a-f]{64}$/)
    const again = (await call(a, { idempotencyKey: 'i2', importImage: { path: join(images, 'one.raw'), ref: 'one' } })).image
    expect(again).toMatchObject({ digest: first?.digest, imported: false })
    await pollUntil(async () => (await call(b, { listImages: {} })).imageList?.images?.some((i) => i.ref === 'one:latest' && (i.holders?.length ?? 0) >= 1) === true, { timeoutMs: 10_000, what: 'the import to be gossiped' })
  })

  it('one name, one set of bytes: other bytes under the name are refused, under a new tag taken; a file outside the image dirs is refused', async () => {
    const [a, b] = agents()
    const clash = await failure(call(b, { idempotencyKey: 'i3', importImage: { path: join(images, 'two.raw'), ref: 'one' } }))
    expect(clash.code).toBe('ALREADY_EXISTS')
    expect(clash.message).toMatch(/already names sha256:/)
    const tagged = (await call(b, { idempotencyKey: 'i4', importImage: { path: join(images, 'two.raw'), ref: 'one:v2' } })).image
    expect(tagged).toMatchObject({ ref: 'one:v2', imported: true })
    const outside = await failure(call(a, { idempotencyKey: 'i5', importImage: { path: '/etc/passwd', ref: 'secret' } }))
    expect(outside).toMatchObject({ code: 'INVALID_ARGUMENT' })
    expect(outside.message).toMatch(/outside the image dirs/)
  })

  it('a VM created at one host, placed on another, runs from the image fetched there: its disk is an overlay on the fetched base', async () => {
    const [a, b, c] = agents()
    const hostC = c.mesh.view.hosts().find((h) => h.self)?.advert.hostname as string
    const created = vmView((await call(b, { idempotencyKey: 'vm-img-1', createVm: { spec: spec('from-library', 'one', hostC) } })).vm ?? {})
    expect(created.owner).toBe(c.hostId)
    expect(created.boot.library.ref).toBe('one:latest')
    await pollUntil(async () => vmView((await call(c, { inspectVm: { vm: { name: 'from-library' } } })).vm ?? {}).state === 'running', { timeoutMs: 30_000, what: 'the VM to run' })
    const disk = (await c.hypervisor.inspect(created.id)).spec.disks?.[0]
    expect(disk?.base).toContain(join('h2', 'images'))
    const info = (await call(a, { inspectImage: { ref: 'one' } })).image
    expect(info?.digest).toBe(created.boot.library.digest)
    await pollUntil(async () => {
      const i = (await call(a, { inspectImage: { ref: 'one' } })).image
      return i?.holders?.some((h) => h.hostId === c.hostId && h.chunksHeld === 4) === true && i.usedBy?.includes(created.id) === true
    }, { timeoutMs: 10_000, what: 'the fetched copy and its user in the gossip' })
  })

  it('each named image is kept on two hosts: one that holds it alone has a copy made without being asked', async () => {
    const [a] = agents()
    await pollUntil(async () => {
      const i = (await call(a, { inspectImage: { ref: 'one:v2' } })).image
      return (i?.holders ?? []).filter((h) => h.chunksHeld === i?.chunkCount).length >= 2
    }, { timeoutMs: 20_000, what: 'a second full copy of one:v2' })
  })

  it('an unknown image is refused before placement, naming what to do', async () => {
    const [a] = agents()
    const refused = await failure(call(a, { idempotencyKey: 'vm-img-2', createVm: { spec: spec('no-image', 'nope', '') } }))
    expect(refused.code).toBe('NOT_FOUND')
    expect(refused.message).toMatch(/no image named nope:latest .*meshvirt image import/)
  })

  it('image rm removes the name everywhere; a host keeps the bytes while its VM needs them, the others let them go', async () => {
    const [a, b, c] = agents()
    await call(b, { idempotencyKey: 'rm-1', removeImage: { ref: 'one' } })
    for (const agent of [a, b, c]) {
      await pollUntil(async () => (await call(agent, { listImages: {} })).imageList?.images?.every((i) => i.ref !== 'one:latest') === true, { timeoutMs: 10_000, what: 'the name to be gone' })
    }
    expect((await failure(call(c, { inspectImage: { ref: 'one' } }))).code).toBe('NOT_FOUND')
    const vm = vmView((await call(c, { inspectVm: { vm: { name: 'from-library' } } })).vm ?? {})
    // No name: the hosts without a VM on it let the bytes go; c runs the VM: they stay there.
    for (const agent of [a, b]) {
      await pollUntil(async () => !agent.mesh.view.hosts().find((h) => h.self)?.advert.images.some((i) => i.digest === vm.boot.library.digest), { timeoutMs: 10_000, what: 'the other hosts to evict the bytes' })
    }
    expect(c.mesh.view.hosts().find((h) => h.self)?.advert.images.find((i) => i.digest === vm.boot.library.digest)?.usedBy).toEqual([vm.id])
  })
})
