/** How the QEMU driver notices runs ending that it did not ask for. */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { QemuHypervisor, QmpClient, type HypervisorEvent, type VmSpec } from '../src/index.js'
import { ensureGuest, isRunning, killQemusUnder, type TestGuest } from '@meshvirt/testkit'

let guest: TestGuest
let dataDir: string
const drivers: QemuHypervisor[] = []
beforeAll(async () => { guest = await ensureGuest() }, 180_000)
beforeEach(async () => { dataDir = await mkdtemp(join(tmpdir(), 'mv-exit-')) })
afterEach(async () => {
  for (const hv of drivers.splice(0)) await hv.close()
  await killQemusUnder(dataDir)
  await rm(dataDir, { recursive: true, force: true })
})

function driver (): QemuHypervisor {
  const hv = new QemuHypervisor({ dataDir, accel: 'tcg', imageDirs: [guest.dir] })
  drivers.push(hv)
  return hv
}
const spec = (id: string): VmSpec => ({ id, vcpus: 1, memoryMiB: 128, boot: { kind: 'kernel', kernel: guest.kernel, initrd: guest.initrd, cmdline: guest.cmdline } })

async function until (check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describe('QemuHypervisor exits', () => {
  it('reports a QEMU killed from outside as crashed, through onEvent and events()', async () => {
    const hv = driver()
    const ac = new AbortController()
    const iterated: HypervisorEvent[] = []
    const reading = (async () => { for await (const e of hv.events({ signal: ac.signal })) iterated.push(e) })()
    await hv.create(spec('victim'))
    const { pid } = await hv.start('victim')
    process.kill(pid as number, 'SIGKILL')
    await until(async () => (await hv.inspect('victim')).state === 'crashed', 10_000)
    expect((await hv.inspect('victim')).exit?.reason).toBe('crashed')
    await until(() => iterated.length === 2, 1000)
    ac.abort()
    await reading
    expect(iterated.map((e) => e.type)).toEqual(['started', 'crashed'])
    // A crashed VM may be started again.
    expect((await hv.start('victim')).state).toBe('running')
  })

  it('a QEMU that died while no driver was attached is found crashed at recover()', async () => {
    const first = driver()
    await first.create(spec('orphan'))
    const { pid } = await first.start('orphan')
    await first.close()
    process.kill(pid as number, 'SIGKILL')
    await until(async () => !await isRunning(pid as number), 5000)

    const second = driver()
    const events: HypervisorEvent[] = []
    second.onEvent((e) => events.push(e))
    expect((await second.inspect('orphan')).state).toBe('crashed')
    const recovered = await second.recover('orphan')
    expect(recovered).toMatchObject({ state: 'crashed', exit: { reason: 'exited-while-detached' } })
    expect(events).toMatchObject([{ type: 'crashed', id: 'orphan', reason: 'exited-while-detached' }])
    const record = JSON.parse(await readFile(join(recovered.paths.dir, 'vm.json'), 'utf8')) as { state: string }
    expect(record.state).toBe('crashed')
  })

  it('kill() still works by pid when the monitor is held by another client', async () => {
    const first = driver()
    const vm = await first.create(spec('held'))
    const { pid } = await first.start('held')
    await first.close()
    const intruder = await QmpClient.connect(vm.paths.qmpSocket)
    try {
      const second = new QemuHypervisor({ dataDir, accel: 'tcg', imageDirs: [guest.dir], qmpTimeoutMs: 300 })
      drivers.push(second)
      expect(await second.kill('held')).toMatchObject({ state: 'stopped', exit: { reason: 'killed' } })
      expect(await isRunning(pid as number)).toBe(false)
    } finally {
      intruder.close()
    }
  })

  it('close() detaches without stopping the guest', async () => {
    const hv = driver()
    await hv.create(spec('stay'))
    const { pid } = await hv.start('stay')
    await hv.close()
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(await isRunning(pid as number)).toBe(true)
    expect((await driver().inspect('stay'))).toMatchObject({ state: 'running', pid })
  })
})
