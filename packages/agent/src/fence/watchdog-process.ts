/**
 * The fence watchdog: a small process, apart from the agent, that kills a replicated VM's QEMU when
 * the VM's lease runs out unrenewed — also when the agent has died or its event loop stalls, which
 * the lease protocol alone cannot survive (QEMU outlives the agent by design). The agent writes one
 * file per running replicated VM, `<dir>/<vm id>.json` = { pid, fenceAt (epoch ms), vmId }, moving
 * fenceAt forward at every renewal, and removes it when the guest stops for another reason. Past
 * fenceAt the watchdog SIGKILLs the pid (only if its command line still names the VM: pids are
 * reused), records `<vm id>.fenced` and drops the file. It exits once the agent is gone and no file
 * is armed. Run as `node watchdog-process.js DIR AGENT_PID`.
 */
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const TICK_MS = 50

interface Armed { vmId: string, pid: number, fenceAt: number }

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

function commandLine (pid: number): string {
  try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ') } catch { return '' }
}

function tick (dir: string, agentPid: number): boolean {
  // The data dir is gone (the host was wiped, a test cleaned up): nothing is left to guard.
  if (!existsSync(dir)) return false
  let armed = 0
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.json')) continue
    const path = join(dir, name)
    let a: Armed
    try { a = JSON.parse(readFileSync(path, 'utf8')) as Armed } catch { continue }
    armed++
    if (Date.now() < a.fenceAt) continue
    let killed = false
    if (alive(a.pid) && commandLine(a.pid).includes(a.vmId)) {
      try { process.kill(a.pid, 'SIGKILL'); killed = true } catch { /* gone meanwhile */ }
    }
    const record = join(dir, `${a.vmId}.fenced`)
    writeFileSync(`${record}.tmp`, JSON.stringify({ vmId: a.vmId, pid: a.pid, fenceAt: a.fenceAt, at: Date.now(), killed }) + '\n')
    renameSync(`${record}.tmp`, record)
    rmSync(path, { force: true })
  }
  return armed > 0 || alive(agentPid)
}

function main (): void {
  const [dir, pid] = process.argv.slice(2)
  if (dir === undefined || pid === undefined || !existsSync(dir)) {
    process.stderr.write('usage: watchdog-process DIR AGENT_PID\n')
    process.exit(2)
  }
  const agentPid = Number(pid)
  const timer = setInterval(() => {
    let keep = true
    try { keep = tick(dir, agentPid) } catch { keep = existsSync(dir) /* a file raced with the agent: next tick */ }
    if (!keep) { clearInterval(timer); rmSync(join(dir, 'watchdog.pid'), { force: true }) }
  }, TICK_MS)
}

main()
