import type { MeshNode } from '@meshvirt/mesh'

/**
 * Aborts when the mesh connection to `peer` drops. Through the tunnel a dead destination agent
 * breaks the stream itself; on the direct path QEMU talks to QEMU, and a destination QEMU whose
 * agent died (it outlives it by design) would go on receiving a guest nobody will hand over: the
 * source gives up at once instead, and the guest runs on here.
 */
export function watchPeer (libp2p: MeshNode['libp2p'], peer: string): { signal: AbortSignal, lost: () => boolean, stop: () => void } {
  const controller = new AbortController()
  const onDisconnect = (evt: CustomEvent<{ toString: () => string }>): void => {
    if (evt.detail.toString() === peer) controller.abort(new Error(`the mesh connection to destination ${peer} dropped (its agent stopped?)`))
  }
  libp2p.addEventListener('peer:disconnect', onDisconnect as never)
  return {
    signal: controller.signal,
    lost: () => controller.signal.aborted,
    stop: () => { libp2p.removeEventListener('peer:disconnect', onDisconnect as never) }
  }
}
