import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { hostAdvertToWire } from '@meshvirt/mesh'
import { ControlServer } from '../../packages/agent/src/control/control-server.js'
import { ControlError } from '../../packages/agent/src/control/errors.js'
import { silentLogger } from '../../packages/agent/src/log/logger.js'
import type { Monitoring } from '../../packages/agent/src/monitor/attach-monitoring.js'
import { startSimCluster, type SimCluster, type SimHostSize } from '../../packages/agent/src/sim-cluster.js'
import { monitorAgents } from '../../packages/agent/test/monitor-harness.js'
import type { Command } from '../../packages/cli/src/command.js'

export interface MonitoredCluster {
  sim: SimCluster
  monitors: Monitoring[]
  /** A data dir per agent whose control.sock answers listHosts, stopVm and listEvents (as the wired agent will). */
  controlDirs: string[]
  stop: () => Promise<void>
}

/**
 * Sim-cluster agents with their monitoring (see monitorAgents), and per agent a control socket of
 * the test's own that serves the monitor's ListEvents beside ListHosts and StopVm, so the CLI
 * commands run against it whether or not the agent's own control handler routes ListEvents yet.
 */
export async function startMonitoredCluster (sizes: SimHostSize[]): Promise<MonitoredCluster> {
  const sim = await startSimCluster(sizes)
  const monitors: Monitoring[] = []
  let stopMonitors = async (): Promise<void> => {}
  const servers: ControlServer[] = []
  const socketsDir = await mkdtemp(join(tmpdir(), 'mv-ctl-'))
  const stop = async (): Promise<void> => {
    await Promise.allSettled(servers.map(async (s) => { await s.stop() }))
    await stopMonitors()
    await sim.stop()
    await rm(socketsDir, { recursive: true, force: true })
  }
  const controlDirs: string[] = []
  try {
    const attached = await monitorAgents(sim)
    stopMonitors = attached.stop
    monitors.push(...attached.monitors)
    for (const [i, a] of sim.agents.entries()) {
      const monitor = monitors[i] as Monitoring
      const dir = join(socketsDir, `c${i}`)
      await mkdir(dir, { mode: 0o700 })
      const server = new ControlServer(join(dir, 'control.sock'), async (req) => {
        const handler = monitor.controlHandlers[req.body ?? '']
        if (handler !== undefined) return await handler(req)
        if (req.body === 'listHosts') {
          return { hostList: { selfId: a.hostId, hosts: a.mesh.view.hosts().map((h) => ({ advert: hostAdvertToWire(h.advert), liveness: h.liveness, lastHeardMs: h.lastHeardMs })) } }
        }
        if (req.body === 'stopVm') {
          // Routed to the owner as the agent's control handler does (found by id or name).
          const ref = req.stopVm?.vm ?? {}
          for (const o of sim.agents) {
            const row = (ref.id ?? '') !== '' ? o.vms.get(ref.id as string) : o.vms.findByName(ref.name ?? '')
            if (row !== undefined) return { vm: o.vms.info(await o.vms.stop(row.id, req.stopVm?.force === true)) }
          }
          throw new ControlError('NOT_FOUND', 'no such VM')
        }
        throw new ControlError('UNIMPLEMENTED', `${String(req.body)} is not served by the test socket`)
      }, silentLogger)
      await server.start()
      servers.push(server)
      controlDirs.push(dir)
    }
  } catch (err) {
    await stop()
    throw err
  }
  return { sim, monitors, controlDirs, stop }
}

/** Runs one CLI command in this process as `meshvirt` would (same option parsing), capturing its output. */
export async function runCommand (cmd: Command, args: string[], env: Record<string, string> = {}): Promise<{ code: number, out: string[], err: string[] }> {
  const parsed = parseArgs({ args, options: cmd.options, allowPositionals: true, strict: true })
  const out: string[] = []
  const err: string[] = []
  const code = await cmd.run({ values: parsed.values as Record<string, string | boolean | undefined>, positionals: parsed.positionals, env, out: (t) => { out.push(t) }, err: (t) => { err.push(t) } })
  return { code, out, err }
}
