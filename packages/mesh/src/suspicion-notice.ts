/**
 * "I cannot reach host X": what a host publishes on `/meshvirt/<cluster>/liveness/1` when its
 * connection to X dropped (or X's heartbeats stopped) and a direct probe failed. Wire form
 * `meshvirt.v1.HostSuspicion`; decoding validates and never throws.
 */
import { pb } from '@meshvirt/proto'
import { HOST_ID_PATTERN } from './advert-limits.js'

export interface SuspicionNotice {
  /** The suspect. */
  hostId: string
  /** The suspect's (incarnation, seq) the reporter held. */
  incarnation: number
  seq: number
  /** The reporter; equals the gossip signer. */
  reporterId: string
  sentAtMs: number
}

/** A notice is a handful of short fields. */
export const MAX_SUSPICION_BYTES = 512

export function encodeSuspicion (n: SuspicionNotice): Uint8Array {
  return pb.HostSuspicion.encode(n).finish()
}

export type SuspicionDecodeResult =
  | { ok: true, notice: SuspicionNotice }
  | { ok: false, kind: 'oversized' | 'undecodable' | 'invalid', reason: string }

export function decodeSuspicion (bytes: Uint8Array): SuspicionDecodeResult {
  if (bytes.length > MAX_SUSPICION_BYTES) return { ok: false, kind: 'oversized', reason: `oversized: ${bytes.length} bytes` }
  let w: ReturnType<typeof pb.HostSuspicion.decode>
  try {
    w = pb.HostSuspicion.decode(bytes)
  } catch (err) {
    return { ok: false, kind: 'undecodable', reason: `undecodable: ${err instanceof Error ? err.message : String(err)}` }
  }
  const hostId = w.hostId ?? ''
  const reporterId = w.reporterId ?? ''
  if (!HOST_ID_PATTERN.test(hostId)) return { ok: false, kind: 'invalid', reason: 'invalid: host_id is not a peer id' }
  if (!HOST_ID_PATTERN.test(reporterId)) return { ok: false, kind: 'invalid', reason: 'invalid: reporter_id is not a peer id' }
  const incarnation = count(w.incarnation)
  const seq = count(w.seq)
  const sentAtMs = count(w.sentAtMs)
  if (incarnation === undefined || seq === undefined || sentAtMs === undefined || incarnation < 1) {
    return { ok: false, kind: 'invalid', reason: 'invalid: incarnation, seq or sent_at_ms out of range' }
  }
  return { ok: true, notice: { hostId, incarnation, seq, reporterId, sentAtMs } }
}

/** uint64 → safe integer; an absent field reads a Long-like prototype default (see advert-codec). */
function count (v: unknown): number | undefined {
  const n = typeof v === 'object' && v !== null && 'low' in v && 'high' in v
    ? (v as { high: number }).high * 2 ** 32 + ((v as { low: number }).low >>> 0)
    : v ?? 0
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : undefined
}
