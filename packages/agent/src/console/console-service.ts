/**
 * Interactive serial consoles (`meshvirt vm console VM`), from any host.
 *
 * The CLI sends AttachConsole on its control socket; after the answer the connection carries raw
 * bytes. On the VM's owner the agent joins it to QEMU's serial socket (`VmPaths.serialSocket`,
 * which also logs to serial.log, so the log keeps recording). On any other host the agent opens
 * `/meshvirt/console/1.0.0` to the owner, sends the same request there (hops = 1), and joins the
 * CLI's socket to that stream once the owner has answered. One console per VM at a time: QEMU's
 * socket serves one client, as `virsh console` allows one session.
 */
import { createConnection, type Socket } from 'node:net'
import { lpStream } from '@libp2p/utils'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Libp2p, Stream } from '@libp2p/interface'
import { bridgeSocketStream } from '@meshvirt/mesh'
import { pb, type meshvirt } from '@meshvirt/proto'
import type { Hypervisor } from '@meshvirt/hypervisor'
import { ControlError } from '../control/errors.js'
import type { Logger } from '../log/logger.js'
import type { VmRow } from '../store/state-store.js'
import { MAX_CONSOLE_FRAME_BYTES, writeAnswer } from './console-frames.js'

export const CONSOLE_PROTOCOL = '/meshvirt/console/1.0.0'
/** Dialling the owner, its request and its answer must fit in this. */
export const CONSOLE_OPEN_TIMEOUT_MS = 10_000
/** Consoles a peer may hold open on this host at once (one per VM anyway). */
export const MAX_INBOUND_CONSOLES = 32

export interface ConsoleServiceDeps {
  selfId: string
  libp2p: Libp2p
  vms: { get: (id: string) => VmRow | undefined, findByName: (name: string) => VmRow | undefined }
  hypervisor: Pick<Hypervisor, 'inspect'>
  /** The host that owns a VM this host does not (the control API's lookup, through gossip or asking). */
  locate: (ref: meshvirt.v1.IVmRef) => Promise<string>
  log: Logger
}

interface Session {
  vmId: string
  /** Who is attached: `local` (this host's CLI) or a peer's host id. */
  from: string
  close: () => void
}

export class ConsoleService {
  private readonly sessions = new Map<string, Session>()
  private readonly relays = new Set<() => void>()

  constructor (private readonly deps: ConsoleServiceDeps) {}

  async start (): Promise<void> {
    await this.deps.libp2p.handle(CONSOLE_PROTOCOL, async (stream, connection) => {
      await this.acceptPeer(stream, connection.remotePeer.toString())
    }, { maxInboundStreams: MAX_INBOUND_CONSOLES })
  }

  async stop (): Promise<void> {
    await this.deps.libp2p.unhandle(CONSOLE_PROTOCOL)
    for (const s of [...this.sessions.values()]) s.close()
    for (const close of [...this.relays]) close()
  }

  /**
   * The control socket hands over a connection whose first frame was AttachConsole: answer it on
   * `client`, then carry the console's bytes until either side closes. Never throws.
   */
  async attachClient (req: meshvirt.v1.ControlRequest, client: Socket): Promise<void> {
    const ref = req.attachConsole?.vm ?? {}
    try {
      const local = this.findLocal(ref)
      if (local !== undefined) {
        await this.serve(local, 'local', client, (answer) => { writeAnswer(client, answer) })
        return
      }
      await this.relay(ref, await this.deps.locate(ref), client)
    } catch (err) {
      writeAnswer(client, { requestId: req.requestId, error: toControlError(err).toWire() })
    }
  }

  /** The owner's side of a console opened from another host. */
  private async acceptPeer (stream: Stream, peer: string): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: MAX_CONSOLE_FRAME_BYTES })
    const signal = AbortSignal.timeout(CONSOLE_OPEN_TIMEOUT_MS)
    const answer = async (res: meshvirt.v1.IControlResponse): Promise<void> => { await lp.write(pb.ControlResponse.encode(res).finish(), { signal }) }
    try {
      const req = pb.ControlRequest.decode((await lp.read({ signal })).subarray())
      const vm = this.findLocal(req.attachConsole?.vm ?? {})
      if (vm === undefined) throw new ControlError('NOT_FOUND', `VM ${refText(req.attachConsole?.vm ?? {})} is not on host ${this.deps.selfId.slice(-12)} (it may have moved: try again)`)
      const serial = await this.serve(vm, peer, undefined, answer)
      await bridgeSocketStream(serial, lp.unwrap(), { sentBytes: 0, receivedBytes: 0, connections: 1 })
        .catch((err: unknown) => { this.deps.log.debug('console stream ended', { vm: vm.id, peer, err: (err as Error).message }) })
    } catch (err) {
      await answer({ error: toControlError(err).toWire() }).catch(() => {})
      await stream.close({ signal }).catch(() => { stream.abort(err as Error) })
    }
  }

  /**
   * Opens the serial socket of a VM owned here, registers the session and answers; with `client`,
   * joins the two sockets, otherwise returns the serial socket for the caller to carry.
   */
  private async serve (vm: VmRow, from: string, client: Socket | undefined, answer: (res: meshvirt.v1.IControlResponse) => void | Promise<void>): Promise<Socket> {
    const busy = this.sessions.get(vm.id)
    if (busy !== undefined) {
      throw new ControlError('CONSOLE_BUSY', `another console is attached to ${vm.name} (from ${busy.from === 'local' ? 'this host' : `host ${busy.from.slice(-12)}`}): detach it first (Ctrl-])`)
    }
    if (vm.state !== 'running') throw new ControlError('WRONG_STATE', `${vm.name} is ${vm.state}, not running: start it (meshvirt vm start ${vm.name}); its log: meshvirt vm console ${vm.name} --all`)
    const path = (await this.deps.hypervisor.inspect(vm.id)).paths.serialSocket
    const serial = await connectUnix(path).catch((err: unknown) => {
      throw new ControlError('UNAVAILABLE', `cannot open the serial port of ${vm.name} (${(err as Error).message}): a guest started by an older agent has no console socket until it is stopped and started again`)
    })
    const session: Session = { vmId: vm.id, from, close: () => { serial.destroy(); client?.destroy() } }
    this.sessions.set(vm.id, session)
    serial.once('close', () => {
      if (this.sessions.get(vm.id) === session) this.sessions.delete(vm.id)
      this.deps.log.info('console detached', { vm: vm.id, from })
    })
    serial.on('error', (err) => { this.deps.log.debug('serial socket error', { vm: vm.id, err: err.message }) })
    this.deps.log.info('console attached', { vm: vm.id, from })
    serial.pause()
    try {
      await answer({ consoleAttached: { vmId: vm.id, vmName: vm.name, hostId: this.deps.selfId } })
    } catch (err) {
      serial.destroy()
      throw err
    }
    if (client !== undefined) joinSockets(client, serial)
    return serial
  }

  /** This host is not the owner: carry the client's bytes to the owner over the mesh. */
  private async relay (ref: meshvirt.v1.IVmRef, owner: string, client: Socket): Promise<void> {
    if (owner === this.deps.selfId) throw new ControlError('NOT_FOUND', `VM ${refText(ref)} is no longer here`)
    const signal = AbortSignal.timeout(CONSOLE_OPEN_TIMEOUT_MS)
    let stream: Stream | undefined
    try {
      stream = await this.deps.libp2p.dialProtocol(peerIdFromString(owner), CONSOLE_PROTOCOL, { signal })
      const lp = lpStream(stream, { maxDataLength: MAX_CONSOLE_FRAME_BYTES })
      await lp.write(pb.ControlRequest.encode({ hops: 1, attachConsole: { vm: ref } }).finish(), { signal })
      const res = pb.ControlResponse.decode((await lp.read({ signal })).subarray())
      if (res.error != null) throw ControlError.fromWire(res.error)
      writeAnswer(client, { consoleAttached: res.consoleAttached })
      const carried = lp.unwrap()
      const close = (): void => { client.destroy(); carried.abort(new Error('console closed by the agent')) }
      this.relays.add(close)
      this.deps.log.info('console relayed to the owner', { peer: owner, vm: res.consoleAttached?.vmId })
      await bridgeSocketStream(client, carried, { sentBytes: 0, receivedBytes: 0, connections: 1 })
        .catch((err: unknown) => { this.deps.log.debug('console relay ended', { peer: owner, err: (err as Error).message }) })
        .finally(() => { this.relays.delete(close) })
    } catch (err) {
      stream?.abort(err instanceof Error ? err : new Error(String(err)))
      throw err
    }
  }

  private findLocal (ref: meshvirt.v1.IVmRef): VmRow | undefined {
    if ((ref.id ?? '') !== '') return this.deps.vms.get(ref.id as string)
    if ((ref.name ?? '') !== '') return this.deps.vms.findByName(ref.name as string)
    throw new ControlError('INVALID_ARGUMENT', 'name a VM by id or name')
  }
}

/** The owner of a VM, as the control API finds it (gossip, else asking every host): its inspectVm answer. */
export function ownerLocator (control: (req: meshvirt.v1.ControlRequest) => Promise<meshvirt.v1.IControlResponse>): (ref: meshvirt.v1.IVmRef) => Promise<string> {
  return async (ref) => {
    const res = await control(pb.ControlRequest.create({ inspectVm: { vm: ref } }))
    const owner = res.vm?.summary?.owner ?? ''
    if (owner === '') throw new ControlError('NOT_FOUND', `no owner known for VM ${refText(ref)}`)
    return owner
  }
}

/** Both ways until either closes; then both close (the CLI sees its connection end). */
function joinSockets (a: Socket, b: Socket): void {
  const close = (): void => { a.destroy(); b.destroy() }
  a.on('close', close)
  b.on('close', close)
  a.on('error', close)
  b.on('error', close)
  a.pipe(b)
  b.pipe(a)
}

async function connectUnix (path: string): Promise<Socket> {
  return await new Promise((resolve, reject) => {
    const socket = createConnection({ path })
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('no answer within 5 s')) }, 5_000)
    socket.once('connect', () => { clearTimeout(timer); socket.off('error', reject); resolve(socket) })
    socket.once('error', (err) => { clearTimeout(timer); reject(err) })
  })
}

function toControlError (err: unknown): ControlError {
  if (err instanceof ControlError) return err
  const e = err as Error & { code?: string, name?: string }
  if (e.name === 'AbortError' || e.name === 'TimeoutError') return new ControlError('UNAVAILABLE', `the VM's owner did not answer the console request within ${CONSOLE_OPEN_TIMEOUT_MS / 1000} s`)
  return new ControlError('UNAVAILABLE', `console: ${e.message}`)
}

function refText (ref: meshvirt.v1.IVmRef): string {
  return (ref.id ?? '') !== '' ? ref.id as string : ref.name ?? ''
}
