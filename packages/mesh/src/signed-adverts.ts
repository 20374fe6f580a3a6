/**
 * Adverts as their hosts signed them: the gossip message's data, sequence number and signature
 * (libp2p pubsub's StrictSign), kept per host so that a newcomer's view sync can be answered with
 * adverts it can check itself. A peer that passes one on can hold it back; it cannot forge or
 * alter it, just as on the advert topic.
 */
import type { SignedMessage } from '@libp2p/gossipsub'
import { RPC } from '@libp2p/gossipsub/message'
import { peerIdFromString } from '@libp2p/peer-id'
import { decodeHostAdvert } from './advert-codec.js'
import type { HostAdvert } from './host-advert.js'

export interface SignedAdvert {
  /** The encoded HostAdvert. */
  data: Uint8Array
  /** The gossip message's 8-byte sequence number. */
  seqno: Uint8Array
  signature: Uint8Array
}

/** What gossipsub signs: this prefix, then the message's protobuf without signature and key. */
const SIGN_PREFIX = new TextEncoder().encode('libp2p-pubsub:')

export function signedBytes (topic: string, hostId: string, data: Uint8Array, seqno: Uint8Array): Uint8Array {
  const from = peerIdFromString(hostId).toMultihash().bytes
  const message = RPC.Message.encode({ from, data, seqno, topic })
  const out = new Uint8Array(SIGN_PREFIX.byteLength + message.byteLength)
  out.set(SIGN_PREFIX, 0)
  out.set(message, SIGN_PREFIX.byteLength)
  return out
}

/** A gossip sequence number (a 64-bit unsigned integer) in its 8 big-endian bytes. */
export function seqnoBytes (n: bigint): Uint8Array {
  const out = new Uint8Array(8)
  new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, n), false)
  return out
}

/** The signed advert of an accepted gossip message. */
export function signedAdvertOf (msg: SignedMessage): SignedAdvert {
  return { data: msg.data, seqno: seqnoBytes(msg.sequenceNumber), signature: msg.signature }
}

export type VerifyResult =
  | { ok: true, advert: HostAdvert }
  | { ok: false, reason: string, hostId?: string }

/**
 * Checks a signed advert as the advert topic's validator checks a message: it decodes to a valid
 * advert, and its host (an Ed25519 peer id) signed exactly these bytes on `topic`. Never throws.
 */
export async function verifySignedAdvert (topic: string, s: SignedAdvert): Promise<VerifyResult> {
  const decoded = decodeHostAdvert(s.data)
  if (!decoded.ok) return { ok: false, reason: decoded.reason }
  const hostId = decoded.advert.hostId
  if (s.seqno.byteLength !== 8 || s.signature.byteLength !== 64) return { ok: false, reason: 'seqno or signature of the wrong length', hostId }
  try {
    const peerId = peerIdFromString(hostId)
    if (peerId.type !== 'Ed25519') return { ok: false, reason: `host id is an ${peerId.type} key, not Ed25519`, hostId }
    const valid = await peerId.publicKey.verify(signedBytes(topic, hostId, s.data, s.seqno), s.signature)
    return valid ? { ok: true, advert: decoded.advert } : { ok: false, reason: 'signature does not match', hostId }
  } catch (err) {
    return { ok: false, reason: `signature not checkable: ${err instanceof Error ? err.message : String(err)}`, hostId }
  }
}

/** The latest signed advert of each host, in host-id order for paging. */
export class SignedAdverts {
  private readonly byHost = new Map<string, SignedAdvert>()

  /**
   * Keeps copies: what it is given are views into a larger buffer (the gossip frame the message came
   * in, a pulled page), which would otherwise stay in memory as long as the host's advert does.
   */
  remember (hostId: string, s: SignedAdvert): void {
    this.byHost.set(hostId, { data: new Uint8Array(s.data), seqno: new Uint8Array(s.seqno), signature: new Uint8Array(s.signature) })
  }

  get (hostId: string): SignedAdvert | undefined {
    return this.byHost.get(hostId)
  }

  forget (hostId: string): void {
    this.byHost.delete(hostId)
  }

  get size (): number {
    return this.byHost.size
  }

  /**
   * Adverts of the hosts after `after` (host-id order) that `include` accepts, up to `maxBytes` of
   * advert data (at least one advert when any is left); `more` when some are left.
   */
  page (after: string, maxBytes: number, include: (hostId: string) => boolean): { adverts: Array<{ hostId: string, signed: SignedAdvert }>, more: boolean } {
    const ids = [...this.byHost.keys()].filter((id) => id > after && include(id)).sort()
    const adverts: Array<{ hostId: string, signed: SignedAdvert }> = []
    let bytes = 0
    for (const hostId of ids) {
      const signed = this.byHost.get(hostId)
      if (signed === undefined) continue
      if (adverts.length > 0 && bytes + signed.data.byteLength > maxBytes) return { adverts, more: true }
      adverts.push({ hostId, signed })
      bytes += signed.data.byteLength
    }
    return { adverts, more: false }
  }
}
