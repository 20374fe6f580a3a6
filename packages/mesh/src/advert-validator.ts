/**
 * The topic validator of `/meshvirt/<cluster>/adverts/1`. Rejects (the sender is penalised and
 * the message goes no further) what is not a valid advert signed by the host it describes;
 * ignores (dropped, not penalised) adverts older than the view holds. Never throws.
 */
import { TopicValidatorResult, type Message, type TopicValidatorFn } from '@libp2p/gossipsub'
import { decodeHostAdvert } from './advert-codec.js'
import type { HostAdvert } from './host-advert.js'

export type RejectReason = 'unsigned' | 'oversized' | 'undecodable' | 'invalid' | 'signer-mismatch'
export type IgnoreReason = 'stale'

export interface AdvertCounters {
  accepted: number
  rejected: Record<RejectReason, number>
  ignored: Record<IgnoreReason, number>
}

export interface AdvertValidatorInit {
  isStale: (hostId: string, incarnation: number, seq: number) => boolean
  onReject?: (reason: RejectReason, detail: string, from: string) => void
}

export class AdvertValidator {
  readonly counters: AdvertCounters = {
    accepted: 0,
    rejected: { unsigned: 0, oversized: 0, undecodable: 0, invalid: 0, 'signer-mismatch': 0 },
    ignored: { stale: 0 }
  }

  /** Adverts accepted by `validate`, kept for the 'message' handler so each is decoded once. */
  private readonly accepted = new WeakMap<Uint8Array, HostAdvert>()

  constructor (private readonly init: AdvertValidatorInit) {}

  readonly validate: TopicValidatorFn = (_propagationSource, msg) => {
    if (msg.type !== 'signed') return this.reject('unsigned', 'message carries no signature', '?')
    const from = msg.from.toString()
    const decoded = decodeHostAdvert(msg.data)
    if (!decoded.ok) return this.reject(decoded.kind, decoded.reason, from)
    const advert = decoded.advert
    if (advert.hostId !== from) return this.reject('signer-mismatch', `advert for ${advert.hostId} signed by ${from}`, from)
    if (this.init.isStale(advert.hostId, advert.incarnation, advert.seq)) {
      this.counters.ignored.stale++
      return TopicValidatorResult.Ignore
    }
    this.counters.accepted++
    this.accepted.set(msg.data, advert)
    return TopicValidatorResult.Accept
  }

  /** The advert `validate` accepted for this message, if any. */
  advertOf (msg: Message): HostAdvert | undefined {
    return this.accepted.get(msg.data)
  }

  private reject (reason: RejectReason, detail: string, from: string): TopicValidatorResult {
    this.counters.rejected[reason]++
    this.init.onReject?.(reason, detail, from)
    return TopicValidatorResult.Reject
  }
}

export function cloneCounters (c: AdvertCounters): AdvertCounters {
  return { accepted: c.accepted, rejected: { ...c.rejected }, ignored: { ...c.ignored } }
}
