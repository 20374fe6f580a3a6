/**
 * A liveness probe is a request on PROBE_PROTOCOL with an empty body, answered with an empty body.
 * It rides the request channel to the host (request-channel.ts), which member probing keeps open:
 * each of a host's ~10 watchers probes it every ~20 s, well inside the channel's idle minute. So a
 * probe is one frame each way, where libp2p's ping opened, negotiated and closed a stream every
 * time (SYN/ACK/FIN, multistream-select), measured at ~0.3 % of a core per idle agent.
 *
 * Any answer proves the host's event loop runs, a refusal too: a host of an older release that
 * serves channels but not this protocol answers "not served" at once, and is alive; one that serves
 * no channels either refuses the probe's own stream in protocol negotiation, and is alive too.
 */
import type { RequestFailedError } from './errors.js'

export const PROBE_PROTOCOL = '/meshvirt/probe/1.0.0'

const EMPTY = new Uint8Array(0)

export interface ProbeTransport {
  request: (peer: string, protocol: string, request: Uint8Array, options: { signal: AbortSignal, maxResponseBytes: number }) => Promise<Uint8Array>
}

/** Resolves once `hostId` answered; throws when it did not (time-out, refused dial, reset). */
export async function probeHost (transport: ProbeTransport, hostId: string, signal: AbortSignal): Promise<void> {
  try {
    await transport.request(hostId, PROBE_PROTOCOL, EMPTY, { signal, maxResponseBytes: 16 })
  } catch (err) {
    if (answeredWithRefusal(err)) return
    throw err
  }
}

/** The probe handler: the answer itself is the proof. */
export async function answerProbe (): Promise<Uint8Array> {
  return EMPTY
}

function answeredWithRefusal (err: unknown): boolean {
  return (err as { code?: unknown } | undefined)?.code === 'REQUEST_FAILED' && (err as RequestFailedError).answered
}
