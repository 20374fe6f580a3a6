/** The fence watchdog is a real process: it kills a guest whose lease deadline passes unrenewed. */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { FenceWatchdog } from '../src/fence/fence-watchdog.js'

let dir: string
let watchdog: FenceWatchdog
const guests: ChildProcess[] = []

/** A stand-in for a QEMU: a process whose command line names the VM. */
function fakeGuest (vmId: string): ChildProcess {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 120000)', vmId], { stdio: 'ignore' })
  guests.push(child)
  return child
}
const exited = async (c: ChildProcess): Promise<string | null> => await new Promise((resolve) => { if (c.exitCode !== null || c.signalCode !== null) resolve(c.signalCode); else c.once('exit', (_code, signal) => { resolve(signal) }) })
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mv-fence-'))
  watchdog = new FenceWatchdog(join(dir, 'fence'))
  await watchdog.start()
})
afterEach(async () => {
  watchdog.stopProcess()
  for (const g of guests.splice(0)) if (g.exitCode === null && g.signalCode === null) g.kill('SIGKILL')
  await rm(dir, { recursive: true, force: true })
})

describe('fence watchdog', () => {
  it('kills the guest when its deadline passes, and records it', async () => {
    const guest = fakeGuest('vm-aaaa000000000001')
    const armedAt = Date.now()
    await watchdog.arm('vm-aaaa000000000001', guest.pid as number, armedAt + 300)
    expect(await exited(guest)).toBe('SIGKILL')
    const late = Date.now() - (armedAt + 300)
    expect(late).toBeGreaterThanOrEqual(0)
    expect(late).toBeLessThan(500)
    // The kill comes first, its record a moment after: wait for the record (seen missing under load).
    let fired = await watchdog.fired()
    for (const deadline = Date.now() + 5000; fired.length === 0 && Date.now() < deadline;) {
      await sleep(20)
      fired = await watchdog.fired()
    }
    expect(fired).toMatchObject([{ vmId: 'vm-aaaa000000000001', pid: guest.pid, killed: true }])
  })

  it('a deadline moved forward in time (the lease renewed) spares the guest; disarmed, it is left alone', async () => {
    const guest = fakeGuest('vm-aaaa000000000002')
    // Renewed every 200 ms for 2 s, each time 1 s ahead: the first deadlines are long past by the
    // end, and an arm delayed up to 800 ms by a loaded machine (CI beside TCG guests: 300 ms ahead
    // every 100 ms was missed once) still lands in time.
    for (let i = 0; i < 10; i++) {
      await watchdog.arm('vm-aaaa000000000002', guest.pid as number, Date.now() + 1000)
      await sleep(200)
    }
    await watchdog.disarm('vm-aaaa000000000002')
    await sleep(500)
    expect(guest.exitCode).toBeNull()
    expect(guest.signalCode).toBeNull()
    expect(await watchdog.fired()).toEqual([])
  })

  it('never kills a process that is not the VM\'s (a reused pid)', async () => {
    const other = fakeGuest('something-else')
    await watchdog.arm('vm-aaaa000000000003', other.pid as number, Date.now() + 100)
    // Until the deadline has been acted on (a fixed 400 ms was too short beside a CI run), then a while more.
    let fired = await watchdog.fired()
    for (const deadline = Date.now() + 5000; fired.length === 0 && Date.now() < deadline;) {
      await sleep(50)
      fired = await watchdog.fired()
    }
    expect(fired).toMatchObject([{ vmId: 'vm-aaaa000000000003', killed: false }])
    await sleep(200)
    expect(other.exitCode).toBeNull()
    expect(other.signalCode).toBeNull()
  })

  it('runs no process until a deadline is armed', async () => {
    expect(watchdog.processId).toBeUndefined()
    const guest = fakeGuest('vm-aaaa000000000004')
    await watchdog.arm('vm-aaaa000000000004', guest.pid as number, Date.now() + 60_000)
    const pid = watchdog.processId as number
    expect(pid).toBeGreaterThan(0)
    expect(() => process.kill(pid, 0)).not.toThrow()
  })

  it('one watchdog per dir: a second agent start adopts the running one', async () => {
    await watchdog.arm('vm-aaaa000000000005', fakeGuest('vm-aaaa000000000005').pid as number, Date.now() + 60_000)
    expect(watchdog.processId).toBeGreaterThan(0)
    const again = new FenceWatchdog(join(dir, 'fence'))
    await again.start()
    expect(again.processId).toBe(watchdog.processId)
  })

  it('an agent that finds deadlines armed and no watchdog starts one at once', async () => {
    await watchdog.arm('vm-aaaa000000000006', fakeGuest('vm-aaaa000000000006').pid as number, Date.now() + 60_000)
    watchdog.stopProcess()
    const first = watchdog.processId as number
    for (const deadline = Date.now() + 3000; Date.now() < deadline;) {
      try { process.kill(first, 0) } catch { break }
      await sleep(20)
    }
    const again = new FenceWatchdog(join(dir, 'fence'))
    await again.start()
    expect(again.processId).toBeGreaterThan(0)
    expect(again.processId).not.toBe(first)
    again.stopProcess()
  })

  it('exits once its dir is gone (a wiped data dir leaves no watchdog behind)', async () => {
    await watchdog.arm('vm-aaaa000000000007', fakeGuest('vm-aaaa000000000007').pid as number, Date.now() + 60_000)
    const pid = watchdog.processId as number
    expect(pid).toBeGreaterThan(0)
    await rm(join(dir, 'fence'), { recursive: true, force: true })
    const deadline = Date.now() + 3000
    let alive = true
    while (alive && Date.now() < deadline) {
      await sleep(50)
      try { process.kill(pid, 0) } catch { alive = false }
    }
    expect(alive).toBe(false)
  })
})
