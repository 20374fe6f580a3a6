import { randomUUID } from 'node:crypto'
import { formatSize, parseSize, vmView } from '@meshvirt/agent'
import { UsageError, type Command } from '../command.js'
import { controlClient, dataDirOption, jsonOption } from './common.js'
import { hostNames, vmRef } from './vm-args.js'

const POLL_MS = 300
// Enum numbers of proto/vm.proto MigrationParams.OnTimeout.
const ON_TIMEOUT: Record<string, number> = { cancel: 1, continue: 2 }

function bar (done: number, total: number, width = 24): string {
  const f = total > 0 ? Math.min(1, done / total) : 0
  const n = Math.round(f * width)
  return `[${'#'.repeat(n)}${'.'.repeat(width - n)}] ${(f * 100).toFixed(0).padStart(3)}%`
}

export const vmMigrate: Command = {
  path: ['vm', 'migrate'],
  summary: 'move a VM to another host: a running one live (memory and disk), a stopped one cold (its disk); QEMU to QEMU over TLS or through the mesh',
  usage: 'meshvirt vm migrate NAME|ID [--to HOST] [--via direct|mesh|auto] [--channels N] [--downtime-ms N] [--bandwidth SIZE] [--timeout SECONDS] [--on-timeout cancel|continue] [--[no-]auto-converge]',
  options: {
    ...dataDirOption,
    ...jsonOption,
    to: { type: 'string', valueName: 'HOST', description: 'destination host (name or id); default: placement chooses' },
    'downtime-ms': { type: 'string', valueName: 'N', description: 'longest pause QEMU aims for at the switchover (default 10; QEMU\'s own is 300)' },
    bandwidth: { type: 'string', valueName: 'SIZE', description: 'per-second cap, e.g. 1G (default 10G; QEMU\'s own 128M is far below a LAN)' },
    timeout: { type: 'string', valueName: 'SECONDS', description: 'give the migration this long (default 600)' },
    'on-timeout': { type: 'string', valueName: 'ACTION', description: 'cancel (default: the VM stays here) or continue (force the switchover)' },
    'auto-converge': { type: 'boolean', description: 'throttle the guest\'s vCPUs if it dirties memory faster than the link (the default)' },
    'no-auto-converge': { type: 'boolean', description: 'never throttle the guest (QEMU\'s own default; a busy guest may then not converge)' },
    via: { type: 'string', valueName: 'PATH', description: 'direct (QEMU to QEMU, TLS with a one-time key), mesh (the libp2p tunnel) or auto (default: direct when the destination is reachable)' },
    channels: { type: 'string', valueName: 'N', description: 'multifd channels of the direct path (default 2)' }
  },
  examples: ['meshvirt vm migrate web-1', 'meshvirt vm migrate web-1 --to host-3 --downtime-ms 100', 'meshvirt vm migrate web-1 --via mesh', 'meshvirt vm migrate db-1 --timeout 120 --on-timeout continue --auto-converge'],
  async run (ctx) {
    const v = ctx.values
    const onTimeout = (v['on-timeout'] as string | undefined) ?? 'cancel'
    if (ON_TIMEOUT[onTimeout] === undefined) throw new UsageError(`--on-timeout must be cancel or continue, got '${onTimeout}'`)
    const via = (v.via as string | undefined) ?? 'auto'
    if (!['direct', 'mesh', 'auto'].includes(via)) throw new UsageError(`--via must be direct, mesh or auto, got '${via}'`)
    const num = (flag: string): number | undefined => {
      if (v[flag] === undefined) return undefined
      const n = Number(v[flag])
      if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--${flag} must be a positive number, got '${String(v[flag])}'`)
      return n
    }
    const params = {
      ...(num('downtime-ms') !== undefined ? { downtimeLimitMs: Math.round(num('downtime-ms') as number) } : {}),
      ...(v.bandwidth !== undefined ? { bandwidthBytesPerSec: parseSize(v.bandwidth as string, '--bandwidth', 'B') } : {}),
      ...(num('timeout') !== undefined ? { timeoutMs: Math.round((num('timeout') as number) * 1000) } : {}),
      onTimeout: ON_TIMEOUT[onTimeout],
      autoConverge: v['auto-converge'] === true,
      noAutoConverge: v['no-auto-converge'] === true,
      via,
      ...(num('channels') !== undefined ? { channels: Math.round(num('channels') as number) } : {})
    }
    const client = controlClient(ctx)
    const vm = vmRef(ctx)
    const json = v.json === true
    const names = await hostNames(client)
    const label = (id: string): string => names.get(id) ?? id.slice(-12)
    // Progress: ask the owner while the migration call is under way (it answers at the end).
    let done = false
    const poller = (async () => {
      const monitor = controlClient(ctx)
      let last = ''
      // `done` is set by the migration call below, while this loop awaits.
      // eslint-disable-next-line no-unmodified-loop-condition
      while (!done) {
        await new Promise((resolve) => setTimeout(resolve, POLL_MS))
        if (done || json) continue
        const p = await monitor.call({ inspectVm: { vm } }).then((r) => r.vm?.migration, () => undefined)
        if (p == null || p.phase === undefined) continue
        const disk = Number(p.diskTotalBytes ?? 0) > 0 ? ` disk ${bar(Number(p.diskCopiedBytes), Number(p.diskTotalBytes))}` : ''
        const ram = Number(p.ramTotalBytes ?? 0) > 0 ? ` ram ${formatSize(Number(p.ramTransferredBytes))} sent, ${formatSize(Number(p.ramRemainingBytes))} left` : ''
        const line = `  ${p.phase} → ${label(p.toHost ?? '')}${disk}${ram}`
        if (line !== last) ctx.err(line)
        last = line
      }
    })()
    let res
    try {
      if (!json) ctx.err(`migrating ${ctx.positionals[0] ?? ''}${v.to !== undefined ? ` to ${String(v.to)}` : ''} …`)
      res = await client.call({ idempotencyKey: randomUUID(), migrateVm: { vm, toHost: (v.to as string | undefined) ?? '', params } }, { timeoutMs: (params.timeoutMs ?? 600_000) + 60_000 })
    } finally {
      done = true
      await poller
    }
    const view = vmView(res.vm ?? {})
    const rec = res.vm?.lastMigration
    if (json) {
      ctx.out(JSON.stringify(view, null, 2))
      return 0
    }
    if (view.state === 'stopped') {
      ctx.out(`moved ${view.name} (stopped) from ${label(rec?.fromHost ?? '')} to ${label(view.owner)} (epoch ${view.epoch}): ` +
        `${formatSize(Number(rec?.diskBytes ?? 0))} disk in ${Number(rec?.totalMs ?? 0).toFixed(0)} ms, via ${rec?.path ?? '?'}; it stays stopped there`)
      return 0
    }
    ctx.out(`migrated ${view.name} from ${label(rec?.fromHost ?? '')} to ${label(view.owner)} (epoch ${view.epoch}): ` +
      `downtime ${Number(rec?.downtimeMs ?? 0).toFixed(0)} ms${Number(rec?.pauseMs ?? 0) > 0 ? `, pause ${Number(rec?.pauseMs).toFixed(0)} ms` : ''}, total ${Number(rec?.totalMs ?? 0).toFixed(0)} ms, ` +
      `${formatSize(Number(rec?.ramBytes ?? 0))} memory, ${formatSize(Number(rec?.diskBytes ?? 0))} disk, via ${rec?.path ?? '?'}` +
      `${Number(rec?.throughputMbS ?? 0) > 0 ? ` (RAM at ${Number(rec?.throughputMbS).toFixed(0)} MB/s)` : ''}`)
    return 0
  }
}
