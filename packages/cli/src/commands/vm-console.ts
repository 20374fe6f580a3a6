import type { Command, CommandContext } from '../command.js'
import { controlClient, dataDirOption } from './common.js'
import { vmRef } from './vm-args.js'
import { attachConsole } from './vm-console-attach.js'

const POLL_MS = 250
const CHUNK = 64 * 1024

export const vmConsole: Command = {
  path: ['vm', 'console'],
  summary: 'type into a VM\'s serial console (from any host; Ctrl-] detaches); --follow/--log only read its log',
  usage: 'meshvirt vm console NAME|ID [--follow | --log] [--all | --tail BYTES]',
  options: {
    ...dataDirOption,
    follow: { type: 'boolean', short: 'f', description: 'read-only: print the log\'s end, then new output until Ctrl-C' },
    log: { type: 'boolean', description: 'read-only: print the log\'s end and exit' },
    all: { type: 'boolean', description: 'with --follow/--log: from the first boot, not just the end' },
    tail: { type: 'string', valueName: 'BYTES', description: 'with --follow/--log: how much of the end to print first (default 4096)' }
  },
  examples: [
    'meshvirt vm console web-1                  # interactive: keys go to the guest, Ctrl-] detaches',
    'echo "uname -a" | meshvirt vm console web-1 # not a terminal: lines in, output until it is quiet',
    'meshvirt vm console web-1 --follow',
    'meshvirt vm console web-1 --log --all | tail -n 50'
  ],
  async run (ctx) {
    const vm = vmRef(ctx)
    const readOnly = ctx.values.follow === true || ctx.values.log === true || ctx.values.all === true || ctx.values.tail !== undefined
    if (!readOnly) return await attachConsole(ctx, controlClient(ctx), vm)
    return await printLog(ctx, vm)
  }
}

/** The read-only modes: the serial log's end (or all of it), and with --follow what comes after. */
/** Tries of one log read whose answer did not come back (UNAVAILABLE), before the error is shown. */
const READ_ATTEMPTS = 3

async function printLog (ctx: CommandContext, vm: { id?: string, name?: string }): Promise<number> {
  const client = controlClient(ctx)
  const read = async (offset: number, maxBytes: number): Promise<{ data: Uint8Array, next: number }> => {
    // A read is idempotent: a stream to the owner that broke (a busy host) is simply asked again.
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await client.call({ readConsole: { vm, offset, maxBytes } })
        return { data: res.consoleChunk?.data ?? new Uint8Array(0), next: Number(res.consoleChunk?.nextOffset ?? 0) }
      } catch (err) {
        if ((err as { code?: string }).code !== 'UNAVAILABLE' || attempt >= READ_ATTEMPTS) throw err
        await new Promise((resolve) => setTimeout(resolve, 300 * attempt))
      }
    }
  }
  const size = (await read(0, 0)).next
  const tail = Number(ctx.values.tail ?? 4096)
  let offset = ctx.values.all === true ? 0 : Math.max(0, size - (Number.isFinite(tail) ? tail : 4096))
  let stopped = false
  process.once('SIGINT', () => { stopped = true })
  for (;;) {
    const { data, next } = await read(offset, CHUNK)
    if (data.length > 0) process.stdout.write(data)
    offset = next
    if (data.length === CHUNK) continue
    if (ctx.values.follow !== true || stopped) return 0
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
}
