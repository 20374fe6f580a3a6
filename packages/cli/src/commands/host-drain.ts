import { UsageError, type Command } from '../command.js'
import { renderTable } from '../table.js'
import { controlClient, dataDirOption, jsonOption } from './common.js'
import { hostNames } from './vm-args.js'

function hostArg (positionals: string[]): string {
  const host = positionals[0]
  if (host === undefined) throw new UsageError('name the host (its name or id, see meshvirt host ls)')
  return host
}

export const hostDrain: Command = {
  path: ['host', 'drain'],
  summary: 'maintenance mode: stop placing VMs on a host and live-migrate every VM off it',
  usage: 'meshvirt host drain HOST [--concurrency N] [--json]',
  options: {
    ...dataDirOption,
    ...jsonOption,
    concurrency: { type: 'string', valueName: 'N', description: 'VMs migrated at once (default 2)' }
  },
  examples: ['meshvirt host drain host-2', 'meshvirt host drain host-2 --concurrency 4', 'meshvirt host undrain host-2'],
  async run (ctx) {
    const host = hostArg(ctx.positionals)
    const concurrency = ctx.values.concurrency === undefined ? 0 : Number(ctx.values.concurrency)
    if (!Number.isInteger(concurrency) || concurrency < 0) throw new UsageError(`--concurrency must be a whole number, got '${String(ctx.values.concurrency)}'`)
    const client = controlClient(ctx)
    if (ctx.values.json !== true) ctx.err(`draining ${host}: no new VMs go there; moving its VMs off …`)
    const res = await client.call({ drainHost: { host, concurrency } }, { timeoutMs: 60 * 60_000 })
    const report = res.drainReport
    if (ctx.values.json === true) {
      ctx.out(JSON.stringify(report, null, 2))
      return 0
    }
    const names = await hostNames(client)
    const moved = report?.vms ?? []
    if (moved.length > 0) {
      ctx.out(renderTable(['VM', 'ID', 'MOVED TO', 'DOWNTIME', 'RESULT'], moved.map((m) => [
        m.name ?? '', m.vmId ?? '', (m.toHost ?? '') === '' ? '-' : names.get(m.toHost as string) ?? (m.toHost as string).slice(-12),
        (m.error ?? '') === '' ? `${Number(m.downtimeMs ?? 0).toFixed(0)} ms` : '-', (m.error ?? '') === '' ? 'moved' : (m.error as string)
      ])))
    }
    ctx.out(`${host} is ${report?.state ?? 'unknown'}${report?.state === 'drained' ? ': empty, ready for maintenance' : ''}`)
    return moved.some((m) => (m.error ?? '') !== '') ? 1 : 0
  }
}

export const hostUndrain: Command = {
  path: ['host', 'undrain'],
  summary: 'end maintenance mode: the host takes new VMs again',
  usage: 'meshvirt host undrain HOST',
  options: { ...dataDirOption, ...jsonOption },
  examples: ['meshvirt host undrain host-2'],
  async run (ctx) {
    const host = hostArg(ctx.positionals)
    const res = await controlClient(ctx).call({ drainHost: { host, undrain: true } })
    ctx.out(ctx.values.json === true ? JSON.stringify(res.drainReport, null, 2) : `${host} is ${res.drainReport?.state ?? 'unknown'}`)
    return 0
  }
}
