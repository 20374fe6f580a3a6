import { peerIdFromString } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { pb } from '@meshvirt/proto'
import { eventFromWire, eventToWire, type ClusterEvent } from './cluster-event.js'

/**
 * Signatures cover this prefix + the encoded event, so a signature made for events can never be
 * replayed as some other signed libp2p structure (gossipsub signs with "libp2p-pubsub:").
 */
const SIGNING_PREFIX = new TextEncoder().encode('meshvirt-event:')
/** An event is a few hundred bytes; anything much bigger is confused or hostile. */
export const MAX_SIGNED_EVENT_BYTES = 4096
const MAX_TEXT = 512

export type EventRejectReason = 'oversized' | 'undecodable' | 'invalid' | 'bad-signature' | 'signer-mismatch'

export type OpenedEvent = { ok: true, event: ClusterEvent } | { ok: false, reason: EventRejectReason, detail: string }

/** A SignedEvent's bytes, signed with the emitting host's identity key. */
export async function signEvent (key: PrivateKey, event: ClusterEvent): Promise<Uint8Array> {
  const bytes = pb.ClusterEvent.encode(eventToWire(event)).finish()
  const signature = await key.sign(signable(bytes))
  return pb.SignedEvent.encode({ event: bytes, signature }).finish()
}

/**
 * Decodes, validates and verifies a SignedEvent against the public key inside its host id
 * (Ed25519 peer ids embed it, so no key exchange is needed). `signer`, when given (the gossip
 * sender), must be that host. `signerVerified`: the bytes arrived signed by `signer` — gossipsub's
 * StrictSign checked that signature over them before this is called — so the event's own signature
 * adds nothing there and is not checked a second time (a third of the agents' Ed25519 work during a
 * placement storm). Never throws.
 */
export async function openSignedEvent (bytes: Uint8Array, signer?: string, opts: { signerVerified?: boolean } = {}): Promise<OpenedEvent> {
  if (bytes.byteLength > MAX_SIGNED_EVENT_BYTES) return { ok: false, reason: 'oversized', detail: `${bytes.byteLength} bytes` }
  let event: ClusterEvent | undefined
  let signed
  try {
    signed = pb.SignedEvent.decode(bytes)
    event = eventFromWire(pb.ClusterEvent.decode(signed.event))
  } catch (err) {
    return { ok: false, reason: 'undecodable', detail: (err as Error).message }
  }
  if (event === undefined) return { ok: false, reason: 'invalid', detail: 'unknown event kind' }
  const problem = invalid(event)
  if (problem !== undefined) return { ok: false, reason: 'invalid', detail: problem }
  if (signer !== undefined && signer !== event.hostId) return { ok: false, reason: 'signer-mismatch', detail: `event of ${event.hostId} sent by ${signer}` }
  if (signer !== undefined && opts.signerVerified === true) return { ok: true, event }
  try {
    const publicKey = peerIdFromString(event.hostId).publicKey
    if (publicKey === undefined) return { ok: false, reason: 'invalid', detail: 'host id carries no public key' }
    if (!await publicKey.verify(signable(signed.event), signed.signature)) return { ok: false, reason: 'bad-signature', detail: `not signed by ${event.hostId}` }
  } catch (err) {
    return { ok: false, reason: 'invalid', detail: `host id: ${(err as Error).message}` }
  }
  return { ok: true, event }
}

function signable (bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(SIGNING_PREFIX.length + bytes.length)
  out.set(SIGNING_PREFIX)
  out.set(bytes, SIGNING_PREFIX.length)
  return out
}

function invalid (e: ClusterEvent): string | undefined {
  if (e.hostId === '') return 'no host id'
  for (const [field, value] of [['vmId', e.vmId], ['vmName', e.vmName], ['subjectHostId', e.subjectHostId], ['message', e.message]] as const) {
    if (value.length > MAX_TEXT) return `${field} longer than ${MAX_TEXT}`
  }
  if (e.kind.startsWith('vm-') && e.vmId === '') return `${e.kind} without a VM id`
  return undefined
}
