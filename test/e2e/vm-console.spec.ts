import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ensureGuest, killQemusUnder, waitForSerial, type TestGuest, MESHVIRT_BIN, meshvirt, meshvirtOn, startAgentCluster, type AgentProcess, pollUntil } from '@meshvirt/testkit'

interface VmJson { id: string, name: string, owner: string, state: string }

/** A running `meshvirt vm console`, its output so far, and its exit. */
interface ConsoleProcess {
  child: ChildProcess
  stdout: () => string
  stderr: () => string
  exited: Promise<number | null>
}

function startConsole (agent: AgentProcess, vm: string): ConsoleProcess {
  const child = spawn('node', [MESHVIRT_BIN, 'vm', 'console', vm, '--data-dir', agent.dataDir], { stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { err += d.toString() })
  const exited = new Promise<number | null>((resolve) => { child.once('exit', (code) => { resolve(code) }) })
  return { child, stdout: () => out, stderr: () => err, exited }
}

/** The console's exit code, or a failure with its output if it has not exited within `ms`. */
async function exitWithin (c: ConsoleProcess, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => { reject(new Error(`vm console did not exit within ${ms} ms; stderr: ${c.stderr()}; stdout: ${c.stdout().slice(-300)}`)) }, ms)
  })
  try {
    return await Promise.race([c.exited, late])
  } finally {
    clearTimeout(timer)
  }
}

// Real agents as processes, a real QEMU guest (TCG) with a shell on its serial port.
describe('vm console end to end: typing into a guest from a host that is not its owner', () => {
  let dir: string
  let guest: TestGuest
  let agents: AgentProcess[] = []
  const consoles: ConsoleProcess[] = []

  beforeAll(async () => {
    guest = await ensureGuest()
    dir = await mkdtemp(join(tmpdir(), 'mv-con-'))
    await meshvirt(['cluster', 'init', '--out', join(dir, 'cluster.key')])
    agents = (await startAgentCluster(dir, join(dir, 'cluster.key'), 2, () => ['--image-dir', guest.dir])).agents
  }, 240_000)

  afterEach(async () => {
    for (const c of consoles.splice(0)) {
      if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL')
      await c.exited
    }
  })

  afterAll(async () => {
    await Promise.all(agents.map(async (a) => { await a.stop() }))
    for (const i of [1, 2]) await killQemusUnder(join(dir, `host-${i}`))
    await rm(dir, { recursive: true, force: true })
  })

  it('sends a line to the guest shell through the other host and reads its answer; Ctrl-] detaches; the log keeps recording', async () => {
    const [owner, viewer] = agents as [AgentProcess, AgentProcess]
    await pollUntil(async () => (JSON.parse(await meshvirtOn(viewer, ['host', 'ls', '--json'])) as unknown[]).length === 2, { timeoutMs: 20_000, what: 'host-2 to see 2 hosts' })
    const vm = JSON.parse(await meshvirtOn(viewer, ['vm', 'create', '--name', 'con-1', '--memory', '128M', '--host', 'host-1',
      '--kernel', guest.kernel, '--initrd', guest.initrd, '--cmdline', guest.cmdline, '--json'])) as VmJson
    expect(vm.owner).toBe(owner.hostId)
    const serial = join(owner.dataDir, 'vms', vm.id, 'serial.log')
    await waitForSerial(serial, /guest# /, 90_000)

    const con = startConsole(viewer, 'con-1')
    consoles.push(con)
    await pollUntil(async () => con.stderr().includes('escape character is ^]'), { timeoutMs: 15_000, what: `the console to attach (stderr: ${con.stderr()})` })
    expect(con.stderr()).toContain(`on host ${owner.hostId.slice(-12)}`)
    // The shell computes the answer: what comes back is not the echo of what was typed.
    con.child.stdin?.write('echo console-$((40+2))-ok\n')
    await pollUntil(async () => /console-42-ok/.test(con.stdout()), { timeoutMs: 30_000, what: `the guest shell's answer (stdout so far: ${con.stdout().slice(-300)})` })
    // Plain lines for a reader that is not a terminal.
    expect(con.stdout()).not.toContain('\r\n')

    // One console per VM: a second one, from the owner itself, is refused while the first is attached.
    const second = await meshvirt(['vm', 'console', 'con-1', '--data-dir', owner.dataDir])
    expect(second.exitCode).toBe(1)
    expect(second.stderr).toMatch(/another console is attached to con-1 .*\[CONSOLE_BUSY\]/)

    con.child.stdin?.write(Buffer.from([0x1d]))
    expect(await exitWithin(con, 10_000)).toBe(0)
    expect(con.stderr()).toMatch(/detached/)
    // The serial log recorded the session (the guest's echo and its answer) and keeps recording.
    expect(await readFile(serial, 'utf8')).toMatch(/console-42-ok/)

    // Detached for real: the owner accepts the next console at once, this time on its own host,
    // and a script whose input ends gets its answers and leaves by itself.
    const local = startConsole(owner, vm.id)
    consoles.push(local)
    local.child.stdin?.end('echo again-$((1+2))\n')
    expect(await exitWithin(local, 30_000)).toBe(0)
    expect(local.stdout()).toMatch(/again-3/)

    // --follow stays the read-only tail.
    const log = await meshvirt(['vm', 'console', 'con-1', '--log', '--all', '--data-dir', viewer.dataDir])
    expect(log.exitCode).toBe(0)
    expect(log.stdout).toMatch(/MESHVIRT-READY[\s\S]*console-42-ok[\s\S]*again-3/)

    await meshvirtOn(viewer, ['vm', 'delete', 'con-1'])
  }, 240_000)

  it('refuses a console for a VM the cluster does not have, saying so', async () => {
    const viewer = agents[1] as AgentProcess
    const r = await meshvirt(['vm', 'console', 'no-such-vm', '--data-dir', viewer.dataDir])
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toMatch(/no VM no-such-vm in the cluster \[NOT_FOUND\]/)
  })
})
