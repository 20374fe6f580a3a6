import { createConnection, type Socket } from 'node:net'
import { QMP_COMMAND_TIMEOUT_MS } from '../constants.js'
import { AbortedError, QmpError, QmpTimeoutError } from '../errors.js'
import type { AbortOptions } from '../types.js'

export interface QmpEvent {
  event: string
  data?: Record<string, unknown>
  timestamp?: { seconds: number, microseconds: number }
}

export interface QmpCommandOptions extends AbortOptions {
  timeoutMs?: number
}

export interface QmpConnectOptions extends QmpCommandOptions {
  /**
   * What the QEMU said last (the end of its log), asked once if the monitor closes under us: it
   * goes into every error the close causes, since why a QEMU went is there and nowhere else.
   */
  lastWords?: () => Promise<string>
}

interface Pending {
  resolve: (value: unknown) => void
  reject: (err: Error) => void
  cleanup: () => void
}

/**
 * One QMP connection over a unix socket (QEMU serves one client per monitor: the driver holds
 * exactly one per VM). Line-delimited JSON; replies are matched to commands by `id`.
 * https://www.qemu.org/docs/master/interop/qmp-spec.html
 */
export class QmpClient {
  readonly greeting: Record<string, unknown>
  private readonly socket: Socket
  private readonly pending = new Map<string, Pending>()
  private readonly eventListeners = new Set<(event: QmpEvent) => void>()
  private readonly closeListeners = new Set<() => void>()
  private nextId = 1
  private buffered = ''
  private closed = false
  private closedByUs = false
  /** Appended to the errors of a closed monitor: '' or ` (its log ends: …)`. */
  private closeNote: Promise<string> = Promise.resolve('')

  private constructor (socket: Socket, greeting: Record<string, unknown>, rest: string, private readonly lastWords?: () => Promise<string>) {
    this.socket = socket
    this.greeting = greeting
    this.buffered = rest
    socket.on('data', (chunk: Buffer) => { this.receive(chunk.toString('utf8')) })
    socket.on('close', () => { this.handleClose() })
    socket.on('error', () => { /* 'close' follows and fails what is pending */ })
  }

  /** Connect, read the greeting and negotiate capabilities (leaves command mode open). */
  static async connect (path: string, options: QmpConnectOptions = {}): Promise<QmpClient> {
    const timeoutMs = options.timeoutMs ?? QMP_COMMAND_TIMEOUT_MS
    const { socket, greeting, rest } = await new Promise<{ socket: Socket, greeting: Record<string, unknown>, rest: string }>((resolve, reject) => {
      const socket = createConnection(path)
      let text = ''
      const fail = (err: Error): void => { cleanup(); socket.destroy(); reject(err) }
      const timer = setTimeout(() => { fail(new QmpTimeoutError(`no QMP greeting on ${path} within ${timeoutMs} ms`)) }, timeoutMs)
      const onAbort = (): void => { fail(new AbortedError(`QMP connect to ${path} aborted`)) }
      const onError = (err: Error): void => { fail(new QmpError(`cannot connect to QMP socket ${path}: ${err.message}`, { cause: err })) }
      const onData = (chunk: Buffer): void => {
        text += chunk.toString('utf8')
        const nl = text.indexOf('\n')
        if (nl < 0) return
        cleanup()
        try {
          resolve({ socket, greeting: JSON.parse(text.slice(0, nl)) as Record<string, unknown>, rest: text.slice(nl + 1) })
        } catch (err) {
          socket.destroy()
          reject(new QmpError(`bad QMP greeting on ${path}`, { cause: err }))
        }
      }
      const cleanup = (): void => {
        clearTimeout(timer)
        options.signal?.removeEventListener('abort', onAbort)
        socket.off('error', onError)
        socket.off('data', onData)
      }
      if (options.signal?.aborted === true) { onAbort(); return }
      options.signal?.addEventListener('abort', onAbort)
      socket.on('error', onError)
      socket.on('data', onData)
    })
    const client = new QmpClient(socket, greeting, rest, options.lastWords)
    await client.execute('qmp_capabilities', undefined, options)
    return client
  }

  get isClosed (): boolean {
    return this.closed
  }

  /** Run one command; rejects with QmpError on an `error` reply, QmpTimeoutError, or AbortedError. */
  async execute<T = unknown> (command: string, args?: Record<string, unknown>, options: QmpCommandOptions = {}): Promise<T> {
    if (this.closed) throw new QmpError(`QMP connection closed; cannot run ${command}${await this.closeNote}`)
    if (options.signal?.aborted === true) throw new AbortedError(`QMP ${command} aborted`)
    const id = `mv-${this.nextId++}`
    const timeoutMs = options.timeoutMs ?? QMP_COMMAND_TIMEOUT_MS
    return await new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => { settle(new QmpTimeoutError(`QMP ${command} got no answer within ${timeoutMs} ms`)) }, timeoutMs)
      const onAbort = (): void => { settle(new AbortedError(`QMP ${command} aborted`)) }
      const cleanup = (): void => {
        clearTimeout(timer)
        options.signal?.removeEventListener('abort', onAbort)
        this.pending.delete(id)
      }
      const settle = (err: Error): void => { cleanup(); reject(err) }
      options.signal?.addEventListener('abort', onAbort)
      this.pending.set(id, { resolve: (v) => { cleanup(); resolve(v as T) }, reject: settle, cleanup })
      const message: Record<string, unknown> = { execute: command, id }
      if (args !== undefined) message.arguments = args
      this.socket.write(JSON.stringify(message) + '\n')
    })
  }

  onEvent (listener: (event: QmpEvent) => void): () => void {
    this.eventListeners.add(listener)
    return () => { this.eventListeners.delete(listener) }
  }

  /** Called once when the connection ends (QEMU exited, or close()). */
  onClose (listener: () => void): () => void {
    if (this.closed) { queueMicrotask(listener); return () => {} }
    this.closeListeners.add(listener)
    return () => { this.closeListeners.delete(listener) }
  }

  /** Wait for the next event named `name` (optionally matching `filter`). */
  async waitForEvent (name: string, options: QmpCommandOptions & { filter?: (e: QmpEvent) => boolean } = {}): Promise<QmpEvent> {
    const timeoutMs = options.timeoutMs ?? QMP_COMMAND_TIMEOUT_MS
    return await new Promise<QmpEvent>((resolve, reject) => {
      const timer = setTimeout(() => { done(new QmpTimeoutError(`no QMP ${name} event within ${timeoutMs} ms`)) }, timeoutMs)
      const onAbort = (): void => { done(new AbortedError(`waiting for QMP ${name} aborted`)) }
      const offEvent = this.onEvent((e) => { if (e.event === name && (options.filter?.(e) ?? true)) done(undefined, e) })
      const offClose = this.onClose(() => { void this.closeNote.then((note) => { done(new QmpError(`QMP connection closed while waiting for ${name}${note}`)) }) })
      options.signal?.addEventListener('abort', onAbort)
      function done (err?: Error, event?: QmpEvent): void {
        clearTimeout(timer); offEvent(); offClose()
        options.signal?.removeEventListener('abort', onAbort)
        if (err !== undefined) reject(err); else resolve(event as QmpEvent)
      }
    })
  }

  close (): void {
    this.closedByUs = true
    this.socket.destroy()
  }

  private handleClose (): void {
    if (this.closed) return
    this.closed = true
    const words = this.closedByUs ? undefined : this.lastWords
    if (words !== undefined) this.closeNote = words().then((said) => said === '' ? '' : ` (its log ends: ${said})`, () => '')
    const pending = [...this.pending.values()]
    void this.closeNote.then((note) => { for (const p of pending) p.reject(new QmpError(`QMP connection closed before the reply (QEMU exited?)${note}`)) })
    for (const l of [...this.closeListeners]) l()
  }

  private receive (text: string): void {
    this.buffered += text
    let nl: number
    while ((nl = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, nl).trim()
      this.buffered = this.buffered.slice(nl + 1)
      if (line !== '') this.dispatch(line)
    }
  }

  private dispatch (line: string): void {
    let msg: Record<string, unknown>
    try { msg = JSON.parse(line) as Record<string, unknown> } catch { return }
    if (typeof msg.event === 'string') {
      for (const l of [...this.eventListeners]) l(msg as unknown as QmpEvent)
      return
    }
    const pending = typeof msg.id === 'string' ? this.pending.get(msg.id) : undefined
    if (pending === undefined) return
    if ('error' in msg) {
      const e = msg.error as { class?: string, desc?: string }
      pending.reject(new QmpError(`QMP error ${e.class ?? ''}: ${e.desc ?? 'unknown'}`))
    } else {
      pending.resolve(msg.return)
    }
  }
}
