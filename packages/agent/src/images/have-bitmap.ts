/**
 * Which chunks of an image a host has: one bit per chunk, bit i in byte ⌊i/8⌋, low bit first. The
 * gossip carries it for a host still fetching (empty = complete), so fetchers pick chunks from it.
 */
export class HaveBitmap {
  /** Bits set, kept as they are set (a fetch asks after every chunk). */
  private setBits: number

  private constructor (readonly count: number, private readonly bits: Uint8Array) {
    let n = 0
    for (let i = 0; i < count; i++) if (this.has(i)) n++
    this.setBits = n
  }

  static empty (count: number): HaveBitmap {
    return new HaveBitmap(count, new Uint8Array(Math.ceil(count / 8)))
  }

  static full (count: number): HaveBitmap {
    const b = HaveBitmap.empty(count)
    for (let i = 0; i < count; i++) b.set(i)
    return b
  }

  /** From gossip or disk: an empty array means complete; bits past `count` are ignored. */
  static from (count: number, bytes: Uint8Array): HaveBitmap {
    if (bytes.length === 0) return HaveBitmap.full(count)
    const bits = new Uint8Array(Math.ceil(count / 8))
    bits.set(bytes.subarray(0, bits.length))
    const last = count % 8
    if (last !== 0 && bits.length > 0) bits[bits.length - 1] = (bits[bits.length - 1] as number) & ((1 << last) - 1)
    return new HaveBitmap(count, bits)
  }

  has (i: number): boolean {
    return i >= 0 && i < this.count && (((this.bits[i >> 3] as number) >> (i & 7)) & 1) === 1
  }

  set (i: number): void {
    if (i < 0 || i >= this.count) throw new RangeError(`chunk ${i} is outside 0..${this.count - 1}`)
    if (this.has(i)) return
    this.bits[i >> 3] = (this.bits[i >> 3] as number) | (1 << (i & 7))
    this.setBits++
  }

  /** The chunk is no longer held (its bytes on disk were found damaged). */
  clear (i: number): void {
    if (!this.has(i)) return
    this.bits[i >> 3] = (this.bits[i >> 3] as number) & ~(1 << (i & 7))
    this.setBits--
  }

  held (): number {
    return this.setBits
  }

  complete (): boolean {
    return this.held() === this.count
  }

  /** The chunks not held, in order. */
  missing (): number[] {
    const out: number[] = []
    for (let i = 0; i < this.count; i++) if (!this.has(i)) out.push(i)
    return out
  }

  /** For gossip and disk: empty when complete. */
  toBytes (): Uint8Array {
    return this.complete() ? new Uint8Array() : Uint8Array.from(this.bits)
  }
}
