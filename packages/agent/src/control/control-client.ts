import { randomUUID } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { FrameDecoder, encodeFrame, pb, type meshvirt } from '@meshvirt/proto'
import { readAnswer } from '../console/console-frames.js'
import { AgentUnreachableError, ControlError } from './errors.js'

export const DEFAULT_CONTROL_TIMEOUT_MS = 30_000

/** What the CLI talks to: the local control socket (ControlClient) or an agent's API (ApiClient). */
export interface AgentClient {
  call: ControlClient['call']
  /** The console's bytes both ways, paused: resume to read, destroy to detach. */
  attachConsole: (vm: meshvirt.v1.IVmRef, opts?: { timeoutMs?: number }) => Promise<{ attached: meshvirt.v1.IConsoleAttached, socket: Duplex }>
}

/**
 * Talks to a running agent's control socket. Used by the CLI; one request at a time.
 * A response carrying an Error is thrown as a ControlError with the agent's code and message.
 */
export class ControlClient {
  constructor (private readonly socketPath: string) {}

  async call (body: Omit<meshvirt.v1.IControlRequest, 'requestId'>, opts: { timeoutMs?: number, signal?: AbortSignal } = {}): Promise<meshvirt.v1.ControlResponse> {
    const requestId = randomUUID()
    const timeoutMs = opts.timeoutMs ?? DEFAULT_CONTROL_TIMEOUT_MS
    const socket = await this.connect()
    try {
      return await new Promise<meshvirt.v1.ControlResponse>((resolve, reject) => {
        const decoder = new FrameDecoder()
        const timer = setTimeout(() => { reject(new ControlError('TIMEOUT', `the agent did not answer within ${timeoutMs} ms`)) }, timeoutMs)
        const onAbort = (): void => { reject(new ControlError('ABORTED', 'request aborted')) }
        opts.signal?.addEventListener('abort', onAbort, { once: true })
        const done = (): void => { clearTimeout(timer); opts.signal?.removeEventListener('abort', onAbort) }
        socket.on('data', (chunk) => {
          try {
            const [frame] = decoder.push(chunk)
            if (frame === undefined) return
            done()
            const res = pb.ControlResponse.decode(frame)
            if (res.error != null) reject(ControlError.fromWire(res.error))
            else resolve(res)
          } catch (err) { done(); reject(err) }
        })
        socket.on('close', () => { done(); reject(new AgentUnreachableError('the agent closed the control connection without answering')) })
        socket.write(encodeFrame(pb.ControlRequest.encode({ ...body, requestId }).finish()))
      })
    } finally {
      socket.destroy()
    }
  }

  /**
   * Attaches to a VM's serial console (read-write, from any host): resolves once the VM's owner
   * has answered, with the connection that from then on carries the console's raw bytes (paused:
   * resume it to read). Destroy the socket to detach.
   */
  async attachConsole (vm: meshvirt.v1.IVmRef, opts: { timeoutMs?: number } = {}): Promise<{ attached: meshvirt.v1.IConsoleAttached, socket: Socket }> {
    const socket = await this.connect()
    try {
      socket.write(encodeFrame(pb.ControlRequest.encode({ requestId: randomUUID(), attachConsole: { vm } }).finish()))
      const res = await readAnswer(socket, opts.timeoutMs ?? DEFAULT_CONTROL_TIMEOUT_MS)
      return { attached: res.consoleAttached ?? {}, socket }
    } catch (err) {
      socket.destroy()
      throw err
    }
  }

  private async connect (): Promise<Socket> {
    return await new Promise<Socket>((resolve, reject) => {
      const socket = connect(this.socketPath)
      socket.once('connect', () => { socket.off('error', reject); resolve(socket) })
      socket.once('error', (err: NodeJS.ErrnoException) => {
        const hint = err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
          ? `no agent is listening on ${this.socketPath}: start one with \`meshvirt agent --data-dir DIR\`, or point at it with --data-dir`
          : err.code === 'EACCES' ? `permission denied on ${this.socketPath}: run as the agent's user` : err.message
        reject(new AgentUnreachableError(hint))
      })
    })
  }
}
