/** Bad tokens an address may present in a burst, then one per REFILL_MS. */
const BURST = 20
const REFILL_MS = 500
/** Addresses remembered; beyond, the quietest are forgotten. */
const MAX_ADDRESSES = 4096

/**
 * Slows down guessing: each address has a bucket of failed authentications that refills slowly;
 * an empty bucket refuses the address's requests (429) until it refills. Valid requests cost nothing.
 */
export class FailureLimiter {
  private readonly buckets = new Map<string, { tokens: number, at: number }>()

  constructor (private readonly now: () => number = Date.now) {}

  allows (address: string): boolean {
    const b = this.bucket(address)
    return b === undefined || b.tokens >= 1
  }

  failed (address: string): void {
    const b = this.bucket(address) ?? { tokens: BURST, at: this.now() }
    b.tokens = Math.max(0, b.tokens - 1)
    this.buckets.delete(address)
    this.buckets.set(address, b)
    if (this.buckets.size > MAX_ADDRESSES) this.buckets.delete(this.buckets.keys().next().value as string)
  }

  private bucket (address: string): { tokens: number, at: number } | undefined {
    const b = this.buckets.get(address)
    if (b === undefined) return undefined
    const now = this.now()
    b.tokens = Math.min(BURST, b.tokens + (now - b.at) / REFILL_MS)
    b.at = now
    return b
  }
}
