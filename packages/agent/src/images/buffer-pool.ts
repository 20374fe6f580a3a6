/**
 * Chunk-sized buffers used again instead of one allocated per chunk. A fresh MiB is a new mapping
 * that the kernel faults in page by page as it is first written, and external memory that pushes V8
 * towards its next GC: joining each received chunk into a new buffer cost a fetching agent 0.67 s of
 * its 6 s 1 GiB fetch. A buffer goes back with `put` once nothing reads it any more; the pool keeps a
 * few, and lets them go after a quiet spell (an idle agent holds none).
 */
export class BufferPool {
  private readonly free: Buffer[] = []
  /** The ArrayBuffers this pool made, and those of them now free (a second put is ignored). */
  private readonly made = new WeakSet<ArrayBufferLike>()
  private readonly freeSet = new Set<ArrayBufferLike>()
  private timer: NodeJS.Timeout | undefined

  constructor (readonly size: number, private readonly maxFree: number, private readonly idleMs = 5_000) {}

  /** A buffer of `n` bytes: from the pool when `n` fits its size, else a buffer of its own. */
  get (n: number): Buffer {
    if (n > this.size) return Buffer.allocUnsafe(n)
    let b = this.free.pop()
    if (b === undefined) {
      b = Buffer.allocUnsafeSlow(this.size)
      this.made.add(b.buffer)
    } else {
      this.freeSet.delete(b.buffer)
    }
    return b.subarray(0, n)
  }

  /** `bytes` — a buffer from `get`, or any view into one — is read no more. Others are ignored. */
  put (bytes: Uint8Array): void {
    const ab = bytes.buffer
    if (!this.made.has(ab) || this.freeSet.has(ab) || this.free.length >= this.maxFree) return
    this.freeSet.add(ab)
    this.free.push(Buffer.from(ab, 0, this.size))
    clearTimeout(this.timer)
    this.timer = setTimeout(() => { this.drain() }, this.idleMs)
    this.timer.unref()
  }

  /** Buffers kept for the next `get`. */
  get kept (): number {
    return this.free.length
  }

  drain (): void {
    clearTimeout(this.timer)
    this.free.length = 0
    this.freeSet.clear()
  }
}
