import { UsageError, type Command } from '../command.js'
import { renderTable } from '../table.js'
import { controlClient, dataDirOption, jsonOption } from './common.js'

const MODES: Record<string, number> = { off: 1, recommend: 2, auto: 3 }
const MODE_NAMES = ['unset', 'off', 'recommend', 'auto']

function pct (u: number | null | undefined): string {
  return `${((u ?? 0) * 100).toFixed(1)}%`
}

function points (u: number | null | undefined): string {
  return `${((u ?? 0) * 100).toFixed(1)} utilisation points`
}

export const clusterBalance: Command = {
  path: ['cluster', 'balance'],
  summary: 'automatic rebalancing: show or set the mode (off, recommend, auto); --dry-run prints the plan',
  usage: 'meshvirt cluster balance [--mode off|recommend|auto] [--dry-run] [--json]',
  options: {
    ...dataDirOption,
    ...jsonOption,
    mode: { type: 'string', valueName: 'MODE', description: 'off: no host moves VMs to balance; recommend: each host tells (as an event) the move it would make; auto: it makes it. Cluster-wide: any host takes it and gossip spreads it (the newest setting wins)' },
    'dry-run': { type: 'boolean', description: 'print the moves an offline greedy plan would make from this host\'s view, each one\'s reason and the spread after; nothing moves' }
  },
  examples: ['meshvirt cluster balance', 'meshvirt cluster balance --dry-run', 'meshvirt cluster balance --mode auto', 'meshvirt events --follow   # vm-balanced / balance-recommended, each with its reason'],
  async run (ctx) {
    const modeArg = ctx.values.mode as string | undefined
    const mode = modeArg === undefined ? 0 : MODES[modeArg]
    if (mode === undefined) throw new UsageError(`--mode must be off, recommend or auto, got '${String(modeArg)}'`)
    const dryRun = ctx.values['dry-run'] === true
    const res = await controlClient(ctx).call({ clusterBalance: { mode, dryRun } })
    const r = res.balanceReport ?? {}
    if (ctx.values.json === true) {
      ctx.out(JSON.stringify(r, null, 2))
      return 0
    }
    const s = r.setting
    const set = Number(s?.version ?? 0) > 0 ? ` (set ${new Date(Number(s?.version)).toISOString()} on ${(s?.setBy ?? '').slice(-12)})` : ' (default)'
    ctx.out(`balancing: ${MODE_NAMES[s?.mode ?? 0] ?? 'unset'}${set}`)
    ctx.out(`a host acts when above the mean by more than ${points(r.threshold)} for ${Math.round(Number(r.holdMs ?? 0) / 1000)} s; one move at a time, ${Math.round(Number(r.cooldownMs ?? 0) / 1000)} s apart; each must close a gap by ${points(r.margin)}`)
    const names = new Map((r.hosts ?? []).map((h) => [h.hostId ?? '', (h.hostname ?? '') !== '' ? h.hostname as string : (h.hostId ?? '').slice(-12)]))
    if (dryRun) {
      const moves = r.moves ?? []
      if (moves.length === 0) ctx.out('plan: no move (every host within the threshold, or no move pays)')
      else {
        ctx.out(`plan: ${moves.length} move${moves.length === 1 ? '' : 's'}`)
        ctx.out(renderTable(['#', 'VM', 'FROM', 'TO', 'SPREAD AFTER', 'REASON'], moves.map((m, i) => [
          String(i + 1), m.vmName ?? m.vmId ?? '', names.get(m.fromHost ?? '') ?? '', names.get(m.toHost ?? '') ?? '', (m.cvAfter ?? 0).toFixed(3), m.reason ?? ''
        ])))
      }
    }
    ctx.out(renderTable(dryRun ? ['HOST', 'NOW', 'AFTER', 'VMS AFTER'] : ['HOST', 'UTILISATION'], (r.hosts ?? []).map((h) => dryRun
      ? [names.get(h.hostId ?? '') ?? '', pct(h.before), pct(h.after), String(h.vms ?? 0)]
      : [names.get(h.hostId ?? '') ?? '', pct(h.before)])))
    ctx.out(`spread (coefficient of variation): ${(r.cvBefore ?? 0).toFixed(3)}${dryRun ? ` → ${(r.cvAfter ?? 0).toFixed(3)} after the plan` : ''}; mean utilisation ${pct(r.mean)}`)
    return 0
  }
}
