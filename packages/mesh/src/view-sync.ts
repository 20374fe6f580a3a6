/**
 * View sync on join (memberlist's push-pull, pull only): a host that has just joined asks its
 * first peer on the advert topic for every advert that peer holds, page by page, and checks each
 * one's signature itself. So a newcomer sees the whole cluster within a round trip instead of at
 * each host's next heartbeat, and heartbeats can be spaced out as the cluster grows without
 * making joins slow. A host that reaches again a host it had declared dead (a healed partition,
 * peer-connector.ts) pulls that host's view too: the other half's adverts, all at once. Wire: `meshvirt.v1.ViewPull` → `meshvirt.v1.ViewPage` on VIEW_PROTOCOL.
 */
import { pb } from '@meshvirt/proto'
import type { HostAdvert } from './host-advert.js'
import { signedBytes, verifySignedAdvert, type SignedAdvert, type SignedAdverts } from './signed-adverts.js'

export const VIEW_PROTOCOL = '/meshvirt/view/1.0.0'
/** Advert bytes per page (one advert always fits: an advert is at most 256 KiB). */
export const VIEW_PAGE_BYTES = 512 * 1024
/** Pages one pull reads at most (10,000 hosts of ~2 KB adverts are ~40). */
export const MAX_VIEW_PAGES = 1_000
const PULL_TIMEOUT_MS = 10_000

export interface ViewSyncInit {
  topic: string
  selfId: string
  adverts: SignedAdverts
  /** Whether a host's advert is worth passing on (alive in this host's view). */
  passOn: (hostId: string) => boolean
  /** This host's own advert, encoded, and a signature by its own key over `bytes`. */
  self: () => { data: Uint8Array, seqno: Uint8Array }
  sign: (bytes: Uint8Array) => Uint8Array | Promise<Uint8Array>
  /** Applies a checked advert to the view; true when it was news (not stale). */
  apply: (advert: HostAdvert, signed: SignedAdvert) => boolean
  request: (peer: string, protocol: string, request: Uint8Array, options: { timeoutMs: number, ownStream: boolean }) => Promise<Uint8Array>
  log: (fmt: string, ...args: unknown[]) => void
  /** Advert bytes per page served (VIEW_PAGE_BYTES). */
  pageBytes?: number
}

export interface PullResult {
  pages: number
  /** Adverts that were news to this host. */
  applied: number
  /** Adverts whose check failed (counted, not applied). */
  rejected: number
}

export class ViewSync {
  private synced = false
  private pulling = false
  /** Pulls completed by this host, and the view pages it served. */
  readonly counters = { pulls: 0, pulled: 0, rejected: 0, served: 0 }

  constructor (private readonly init: ViewSyncInit) {}

  /** True once a pull has succeeded. */
  get done (): boolean {
    return this.synced
  }

  /** A peer subscribed to the advert topic: the first pull goes to it (then to the next one, if it fails). */
  onPeer (peer: string): void {
    if (this.synced) return
    this.pullInBackground(peer, 'view sync from %s', () => { this.synced = true })
  }

  /** `peer` had been declared dead and answers again: pull its view (one such pull at a time). */
  reunite (peer: string): void {
    this.pullInBackground(peer, 'view sync after reunion with %s')
  }

  /** One pull at a time, logged: `what` names it (with `%s` for the peer). */
  private pullInBackground (peer: string, what: string, done?: () => void): void {
    if (this.pulling) return
    this.pulling = true
    this.pull(peer)
      .then((r) => {
        done?.()
        this.init.log(`${what}: %d pages, %d adverts new, %d rejected`, peer, r.pages, r.applied, r.rejected)
      })
      .catch((err: unknown) => { this.init.log(`${what} failed: %e`, peer, err) })
      .finally(() => { this.pulling = false })
  }

  /** Reads every page of `peer`'s view and applies what checks out. */
  async pull (peer: string): Promise<PullResult> {
    const r: PullResult = { pages: 0, applied: 0, rejected: 0 }
    let after = ''
    while (r.pages < MAX_VIEW_PAGES) {
      // A stream of its own: a page is up to VIEW_PAGE_BYTES, which would hold up the peer's request channel.
      const answer = await this.init.request(peer, VIEW_PROTOCOL, pb.ViewPull.encode({ after }).finish(), { timeoutMs: PULL_TIMEOUT_MS, ownStream: true })
      const page = pb.ViewPage.decode(answer)
      r.pages++
      let last = after
      for (const w of page.adverts) {
        const signed: SignedAdvert = { data: w.data ?? new Uint8Array(), seqno: w.seqno ?? new Uint8Array(), signature: w.signature ?? new Uint8Array() }
        const checked = await verifySignedAdvert(this.init.topic, signed)
        const hostId = checked.ok ? checked.advert.hostId : checked.hostId
        // The answerer's own advert comes first on the first page, outside the host-id order.
        if (hostId !== undefined && hostId !== peer && hostId > last) last = hostId
        if (!checked.ok) {
          r.rejected++
          this.counters.rejected++
          this.init.log('view sync from %s: advert of %s rejected: %s', peer, hostId ?? '?', checked.reason)
        } else if (checked.advert.hostId !== this.init.selfId && this.init.apply(checked.advert, signed)) {
          r.applied++
        }
      }
      // A page that does not move the cursor forward would be asked for again and again.
      if (page.more !== true || last === after) break
      after = last
    }
    this.counters.pulls++
    this.counters.pulled += r.applied
    return r
  }

  /** The handler of VIEW_PROTOCOL: the next page of this host's view (its own advert on the first). */
  readonly serve = async (request: Uint8Array): Promise<Uint8Array> => {
    const after = pb.ViewPull.decode(request).after ?? ''
    const { adverts, more } = this.init.adverts.page(after, this.init.pageBytes ?? VIEW_PAGE_BYTES, (id) => id !== this.init.selfId && this.init.passOn(id))
    const out = adverts.map((a) => a.signed)
    if (after === '') out.unshift(await this.selfSigned())
    this.counters.served++
    return pb.ViewPage.encode({ adverts: out, more }).finish()
  }

  private async selfSigned (): Promise<SignedAdvert> {
    const { data, seqno } = this.init.self()
    const signature = await this.init.sign(signedBytes(this.init.topic, this.init.selfId, data, seqno))
    return { data, seqno, signature }
  }
}
