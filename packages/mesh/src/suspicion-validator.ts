/**
 * The topic validator of `/meshvirt/<cluster>/liveness/1`: a notice must decode, be valid, and
 * be signed by the host it names as reporter (so one host cannot pose as many confirmations).
 */
import { TopicValidatorResult, type Message, type TopicValidatorFn } from '@libp2p/gossipsub'
import { decodeSuspicion, type SuspicionNotice } from './suspicion-notice.js'

export type SuspicionRejectReason = 'unsigned' | 'oversized' | 'undecodable' | 'invalid' | 'signer-mismatch'

export interface SuspicionCounters {
  accepted: number
  published: number
  rejected: Record<SuspicionRejectReason, number>
}

export class SuspicionValidator {
  readonly counters: SuspicionCounters = {
    accepted: 0,
    published: 0,
    rejected: { unsigned: 0, oversized: 0, undecodable: 0, invalid: 0, 'signer-mismatch': 0 }
  }

  private readonly accepted = new WeakMap<Uint8Array, SuspicionNotice>()

  constructor (private readonly onReject: (reason: SuspicionRejectReason, detail: string) => void = () => {}) {}

  readonly validate: TopicValidatorFn = (_propagationSource, msg) => {
    if (msg.type !== 'signed') return this.reject('unsigned', 'notice carries no signature')
    const decoded = decodeSuspicion(msg.data)
    if (!decoded.ok) return this.reject(decoded.kind, decoded.reason)
    const from = msg.from.toString()
    if (decoded.notice.reporterId !== from) return this.reject('signer-mismatch', `notice by ${decoded.notice.reporterId} signed by ${from}`)
    this.counters.accepted++
    this.accepted.set(msg.data, decoded.notice)
    return TopicValidatorResult.Accept
  }

  noticeOf (msg: Message): SuspicionNotice | undefined {
    return this.accepted.get(msg.data)
  }

  private reject (reason: SuspicionRejectReason, detail: string): TopicValidatorResult {
    this.counters.rejected[reason]++
    this.onReject(reason, detail)
    return TopicValidatorResult.Reject
  }
}
