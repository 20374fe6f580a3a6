/**
 * yamux window updates once half the receive window is used, not after every data frame.
 *
 * @chainsafe/libp2p-yamux 8 answers every data frame it receives with a WindowUpdate frame for
 * the bytes just read: on a gossip stream that is one more noise-encrypted frame and one more
 * socket write for every message, a second write per message received. The yamux spec's own
 * implementation (hashicorp/yamux) waits until half the window is used. So do we: the sender
 * still never stalls (it has at least half a window left until the update is due), a paused
 * stream still withholds its updates, and the SYN/ACK flags still go out at once.
 *
 * It also keeps yamux's auto-tuning honest: that doubles the window whenever an update goes out
 * within 4 round trips of the last, so an update per frame grew the window of any stream carrying
 * a few quick small messages to the 16 MiB maximum.
 *
 * Measured on the 2-core box (docs/benchmarks.md): 900-byte messages on one stream 66–70 µs of CPU
 * each instead of 83–88; a 4 MiB echo over a bare stream 108–126 MB/s instead of 72–81. Idle
 * agents: inside the noise.
 *
 * Installed on import of `@meshvirt/mesh` (mesh-node.ts imports it). If a yamux release changes
 * the fields this relies on, the original method runs unchanged; `halfWindowUpdates` is false if
 * the method itself is gone.
 */
import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream'

interface WindowFields {
  state: StreamState
  recvWindow: unknown
  recvWindowCapacity: unknown
}

/** Whether an update would only return bytes while the sender still has half a window. */
export function windowUpdateDue (s: WindowFields): boolean {
  if (s.state !== StreamState.Established) return true
  if (typeof s.recvWindow !== 'number' || typeof s.recvWindowCapacity !== 'number') return true
  return s.recvWindowCapacity < s.recvWindow / 2
}

type Proto = { sendWindowUpdate: () => void, __meshvirtHalfWindow?: true }

function install (): boolean {
  const proto = YamuxStream.prototype as unknown as Proto
  if (proto.__meshvirtHalfWindow === true) return true
  const original = proto.sendWindowUpdate
  if (typeof original !== 'function') return false
  proto.sendWindowUpdate = function (this: WindowFields) {
    if (windowUpdateDue(this)) original.call(this)
  }
  proto.__meshvirtHalfWindow = true
  return true
}

/** Whether yamux streams send window updates at half the window (false: yamux's own behaviour). */
export const halfWindowUpdates = install()
