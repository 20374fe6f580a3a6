import { ReplicaTransferError } from './errors.js'

export interface TokenBucketInit {
  /** Sustained rate, bytes per second. */
  bytesPerSec: number
  /** How much may go at once after an idle spell; defaults to a quarter second at the rate. */
  burstBytes?: number
  now?: () => number
}

/**
 * The bandwidth bound of one holder: a token bucket filled at `bytesPerSec` up to `burstBytes`.
 * A take larger than the burst is allowed and leaves the bucket in debt (the next takes wait it
 * off), so a chunk bigger than the burst never deadlocks. Share one bucket per holder across the
 * VMs shipped to it.
 */
export class TokenBucket {
  readonly bytesPerSec: number
  readonly burstBytes: number
  private tokens: number
  private last: number
  private readonly now: () => number

  constructor (init: TokenBucketInit) {
    if (!(init.bytesPerSec > 0)) throw new RangeError(`bytesPerSec must be positive, not ${init.bytesPerSec}`)
    this.bytesPerSec = init.bytesPerSec
    this.burstBytes = init.burstBytes ?? Math.max(1, Math.floor(init.bytesPerSec / 4))
    this.now = init.now ?? (() => performance.now())
    this.tokens = this.burstBytes
    this.last = this.now()
  }

  /** Takes `bytes` now and returns how long the caller must wait before sending them (ms). */
  reserve (bytes: number): number {
    this.refill()
    this.tokens -= bytes
    return this.tokens >= 0 ? 0 : (-this.tokens / this.bytesPerSec) * 1000
  }

  /** Waits until `bytes` may be sent. */
  async take (bytes: number, signal?: AbortSignal): Promise<void> {
    const wait = this.reserve(bytes)
    if (wait <= 0) return
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => { clearTimeout(timer); reject(new ReplicaTransferError('bandwidth wait aborted')) }
      const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve() }, wait)
      if (signal?.aborted === true) { onAbort(); return }
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  /** Tokens available now (negative: in debt). */
  available (): number {
    this.refill()
    return this.tokens
  }

  private refill (): void {
    const t = this.now()
    this.tokens = Math.min(this.burstBytes, this.tokens + ((t - this.last) / 1000) * this.bytesPerSec)
    this.last = t
  }
}
