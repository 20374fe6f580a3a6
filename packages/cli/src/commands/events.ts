import type { Command, CommandContext } from '../command.js'
import { UsageError } from '../command.js'
import { controlClient, dataDirOption, jsonOption } from './common.js'

/** How long one --follow request waits at the agent for news before asking again. */
const FOLLOW_WAIT_MS = 20_000
const PAGE = 500

/** One event as printed with --json (the agent's ClusterEvent plus its cursor there). */
export interface PrintedEvent {
  cursor: number
  time: string
  kind: string
  hostId: string
  incarnation: number
  seq: number
  vmId: string
  vmName: string
  vmEpoch: number
  subjectHostId: string
  message: string
}

/**
 * The control API's EventList in protobuf's canonical JSON form (what a decoded message's
 * toJSON gives: enum names, defaults left out), read into plain rows. The CLI talks to the agent
 * only through the control API and so reads the wire JSON rather than importing protobuf code.
 */
function readEventList (list: unknown): { events: PrintedEvent[], nextCursor: number } {
  const json = (list as { toJSON?: () => Record<string, unknown> } | null | undefined)?.toJSON?.() ?? {}
  const rows = (json.events as Array<{ cursor?: string | number, event?: Record<string, string | number | undefined> }> | undefined) ?? []
  const events = rows.map((r): PrintedEvent => {
    const e = r.event ?? {}
    const str = (k: string): string => String(e[k] ?? '')
    const num = (k: string): number => Number(e[k] ?? 0)
    return {
      cursor: Number(r.cursor ?? 0),
      time: new Date(num('timeMs')).toISOString(),
      // EVENT_KIND_VM_CREATED → vm-created
      kind: str('kind').replace(/^EVENT_KIND_/, '').toLowerCase().replace(/_/g, '-'),
      hostId: str('hostId'),
      incarnation: num('incarnation'),
      seq: num('seq'),
      vmId: str('vmId'),
      vmName: str('vmName'),
      vmEpoch: num('vmEpoch'),
      subjectHostId: str('subjectHostId'),
      message: str('message')
    }
  })
  return { events, nextCursor: Number(json.nextCursor ?? 0) }
}

/** Host names by id from the agent's view, to print names instead of peer ids (best effort). */
async function hostNames (ctx: CommandContext): Promise<Map<string, string>> {
  try {
    const res = await controlClient(ctx).call({ listHosts: {} })
    return new Map((res.hostList?.hosts ?? []).map((h) => [h.advert?.hostId ?? '', h.advert?.hostname ?? '']))
  } catch {
    return new Map()
  }
}

function line (e: PrintedEvent, names: Map<string, string>): string {
  const host = (id: string): string => (names.get(id) ?? '') !== '' ? names.get(id) as string : id.slice(-12)
  const subject = e.vmId !== '' ? (e.vmName !== '' ? `vm ${e.vmName} (${e.vmId})` : `vm ${e.vmId}`) : e.subjectHostId !== '' && e.subjectHostId !== e.hostId ? `host ${host(e.subjectHostId)}` : ''
  return [e.time.replace('T', ' ').replace('Z', ''), e.kind.padEnd(13), `by ${host(e.hostId)}`.padEnd(16), subject, e.message !== '' ? `— ${e.message}` : ''].join('  ').trimEnd()
}

export const events: Command = {
  path: ['events'],
  summary: 'the cluster\'s event stream (VMs created/started/stopped/migrated/deleted/crashed, hosts joined/suspect/dead), signed by the hosts that emitted them',
  usage: 'meshvirt events [--follow] [--vm ID|NAME] [--count N] [--json] [--data-dir DIR]',
  options: {
    follow: { type: 'boolean', short: 'f', description: 'keep printing new events as they happen (Ctrl-C to stop)' },
    vm: { type: 'string', valueName: 'ID|NAME', description: 'only the events of this VM' },
    count: { type: 'string', valueName: 'N', description: 'exit after printing N events (with --follow: wait for them)' },
    ...dataDirOption,
    ...jsonOption
  },
  examples: [
    'meshvirt events',
    'meshvirt events --follow --vm web-1',
    'meshvirt events --follow --json | jq -c "select(.kind == \\"vm-crashed\\")"',
    'meshvirt events --follow --vm web-1 --count 1   # wait for the next event of web-1'
  ],
  async run (ctx) {
    const follow = ctx.values.follow === true
    const json = ctx.values.json === true
    const vm = (ctx.values.vm as string | undefined) ?? ''
    const countText = ctx.values.count as string | undefined
    const count = countText === undefined ? Infinity : Number(countText)
    if (countText !== undefined && (!Number.isInteger(count) || count < 1)) throw new UsageError(`--count wants a whole number ≥ 1, not '${countText ?? ''}'`)
    const client = controlClient(ctx)
    const names = json ? new Map<string, string>() : await hostNames(ctx)

    let cursor = 0
    let printed = 0
    const collected: PrintedEvent[] = []
    /** Prints a page; false once --count is reached. */
    const show = async (page: PrintedEvent[]): Promise<boolean> => {
      for (const e of page) {
        if (printed >= count) return false
        printed++
        if (json && !follow) collected.push(e)
        else if (json) ctx.out(JSON.stringify(e))
        else {
          // A host met while following: learn its name.
          if (e.kind === 'host-joined' && !names.has(e.hostId)) for (const [k, v] of await hostNames(ctx)) names.set(k, v)
          ctx.out(line(e, names))
        }
      }
      return printed < count
    }
    // What the agent holds, page by page (a --vm filter may give empty pages that still advance)…
    let more = true
    for (;;) {
      const page = readEventList((await client.call({ listEvents: { afterCursor: cursor, vm, limit: PAGE } })).eventList)
      more = await show(page.events)
      if (!more || page.nextCursor === cursor) break
      cursor = page.nextCursor
    }
    // …then, with --follow, long polls: the agent answers at the first new event or after the wait.
    if (follow) {
      while (more) {
        const res = await client.call({ listEvents: { afterCursor: cursor, vm, limit: PAGE, waitMs: FOLLOW_WAIT_MS } }, { timeoutMs: FOLLOW_WAIT_MS + 10_000 })
        const page = readEventList(res.eventList)
        more = await show(page.events)
        cursor = page.nextCursor
      }
    }
    if (json && !follow) ctx.out(JSON.stringify(collected, null, 2))
    return 0
  }
}
