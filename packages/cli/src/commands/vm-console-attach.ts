import type { AgentClient } from '@meshvirt/agent'
import type { CommandContext } from '../command.js'

/** Ctrl-], as `virsh console` and telnet use: detaches without sending anything to the guest. */
export const DETACH_BYTE = 0x1d
/**
 * Without a terminal, once stdin has ended: detach when the guest, having started to answer, has
 * printed nothing for this long…
 */
export const QUIET_MS = 1_500
/**
 * …or this long after stdin ended, whichever comes first: a guest that never stops printing, or
 * one that never answers (a slow guest's first byte may take seconds under load: it is waited for).
 */
export const MAX_DRAIN_MS = 8_000

/**
 * What a chunk of the user's input becomes: the bytes to send before a detach key, and whether
 * the detach key was in it. Without a terminal, line ends become CR, the Enter a terminal sends.
 */
export function splitInput (chunk: Uint8Array, terminal: boolean): { send: Uint8Array, detach: boolean } {
  const at = chunk.indexOf(DETACH_BYTE)
  const before = at < 0 ? chunk : chunk.subarray(0, at)
  const send = terminal ? before : Uint8Array.from(before, (b) => (b === 0x0a ? 0x0d : b))
  return { send, detach: at >= 0 }
}

/**
 * Guest output for a reader that is not a terminal: plain lines (CR LF → LF), keeping a trailing CR
 * for the next chunk so a pair split across chunks is still joined. Returns [text, carry].
 */
export function plainLines (carry: string, chunk: string): [string, string] {
  let text = (carry + chunk).replaceAll('\r\n', '\n')
  let next = ''
  if (text.endsWith('\r')) { next = '\r'; text = text.slice(0, -1) }
  return [text, next]
}

/** `meshvirt vm console VM`: the guest's serial port, read-write, until Ctrl-] or the guest goes away. */
export async function attachConsole (ctx: CommandContext, client: AgentClient, vm: { id?: string, name?: string }): Promise<number> {
  const { attached, socket } = await client.attachConsole(vm)
  const stdin = process.stdin
  const terminal = stdin.isTTY
  const plainOut = process.stdout.isTTY !== true
  ctx.err(`connected to ${attached.vmName ?? ''} (${attached.vmId ?? ''}) on host ${(attached.hostId ?? '').slice(-12)}; escape character is ^] (Ctrl-])`)
  return await new Promise<number>((resolve) => {
    let done = false
    let carry = ''
    let quiet: NodeJS.Timeout | undefined
    let drainLimit: NodeJS.Timeout | undefined
    const finish = (code: number, message: string): void => {
      if (done) return
      done = true
      clearTimeout(quiet)
      clearTimeout(drainLimit)
      if (terminal) stdin.setRawMode(false)
      stdin.off('data', onInput)
      stdin.off('end', onInputEnd)
      // Not just paused: an open stdin pipe would keep the process alive after the answer.
      stdin.destroy()
      socket.destroy()
      if (carry !== '') process.stdout.write(carry)
      ctx.err(`${terminal ? '\r\n' : ''}${message}`)
      resolve(code)
    }
    const draining = (): boolean => drainLimit !== undefined
    const rearmQuiet = (): void => {
      clearTimeout(quiet)
      quiet = setTimeout(() => { finish(0, 'detached (input ended, the console went quiet)') }, QUIET_MS)
    }
    let typed = false
    const onInput = (chunk: Buffer): void => {
      const { send, detach } = splitInput(chunk, terminal)
      if (send.length > 0) { socket.write(send); typed = true }
      if (detach) finish(0, 'detached')
    }
    // Without a terminal the input is a script: once it has ended, read the answers, then leave.
    // The quiet clock starts at the guest's first byte after the input ended (its echo or answer);
    // with nothing typed there is no answer to wait for.
    const onInputEnd = (): void => {
      drainLimit = setTimeout(() => { finish(0, `detached (input ended ${MAX_DRAIN_MS / 1000} s ago)`) }, MAX_DRAIN_MS)
      if (!typed) rearmQuiet()
    }
    socket.on('data', (chunk: Buffer) => {
      if (plainOut) {
        const [text, next] = plainLines(carry, chunk.toString('latin1'))
        carry = next
        process.stdout.write(Buffer.from(text, 'latin1'))
      } else {
        process.stdout.write(chunk)
      }
      if (draining()) rearmQuiet()
    })
    socket.on('close', () => { finish(1, `console closed by the agent: the guest stopped or moved (see meshvirt vm show ${attached.vmName ?? ''})`) })
    socket.on('error', () => {})
    if (terminal) stdin.setRawMode(true)
    stdin.on('data', onInput)
    stdin.on('end', onInputEnd)
    stdin.resume()
    socket.resume()
  })
}
