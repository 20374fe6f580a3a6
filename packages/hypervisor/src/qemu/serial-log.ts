import { open, stat } from 'node:fs/promises'
import { AbortedError, WaitTimeoutError } from '../errors.js'
import type { AbortOptions } from '../types.js'

export interface FollowSerialOptions extends AbortOptions {
  /** Byte offset to start from: 0 for the whole history, `'end'` for new output only. Default 0. */
  from?: number | 'end'
  /** How often to look for new output. */
  pollMs?: number
}

const POLL_MS = 50
const CHUNK = 64 * 1024

/**
 * Follow a VM's serial log (`VmInfo.paths.serialLog`) line by line, like `tail -f`, until the
 * signal aborts. QEMU appends to it across boots, so a console can show history and then follow.
 */
export async function * followSerialLog (path: string, options: FollowSerialOptions = {}): AsyncGenerator<string> {
  let offset = options.from === 'end' ? await size(path) : options.from ?? 0
  let partial = ''
  const pollMs = options.pollMs ?? POLL_MS
  while (options.signal?.aborted !== true) {
    const chunk = await readFrom(path, offset)
    if (chunk.length > 0) {
      offset += chunk.length
      const lines = (partial + chunk.toString('utf8')).split('\n')
      partial = lines.pop() ?? ''
      for (const line of lines) yield line.replace(/\r$/, '')
      continue
    }
    await sleep(pollMs, options.signal)
  }
}

export interface WaitForSerialOptions extends FollowSerialOptions {
  timeoutMs: number
}

/** Resolve with the first serial line matching `pattern` (e.g. the guest's ready marker). */
export async function waitForSerialLine (path: string, pattern: RegExp | string, options: WaitForSerialOptions): Promise<string> {
  const ac = new AbortController()
  const timer = setTimeout(() => { ac.abort() }, options.timeoutMs)
  const onAbort = (): void => { ac.abort() }
  options.signal?.addEventListener('abort', onAbort)
  try {
    for await (const line of followSerialLog(path, { ...options, signal: ac.signal })) {
      if (typeof pattern === 'string' ? line.includes(pattern) : pattern.test(line)) return line
    }
  } finally {
    clearTimeout(timer)
    options.signal?.removeEventListener('abort', onAbort)
  }
  if (options.signal?.aborted === true) throw new AbortedError(`waiting for ${String(pattern)} in ${path} aborted`)
  throw new WaitTimeoutError(`no ${String(pattern)} in ${path} within ${options.timeoutMs} ms`)
}

async function size (path: string): Promise<number> {
  try { return (await stat(path)).size } catch { return 0 }
}

async function readFrom (path: string, offset: number): Promise<Buffer> {
  let file
  try { file = await open(path, 'r') } catch { return Buffer.alloc(0) }
  try {
    const buf = Buffer.alloc(CHUNK)
    const { bytesRead } = await file.read(buf, 0, CHUNK, offset)
    return buf.subarray(0, bytesRead)
  } finally {
    await file.close()
  }
}

async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted === true) return
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms)
    function done (): void { clearTimeout(timer); signal?.removeEventListener('abort', done); resolve() }
    signal?.addEventListener('abort', done)
  })
}
