import { setFlagsFromString } from 'node:v8'

/**
 * How far V8 lets the old generation grow past what survived the last full GC. Lean (1.2×) keeps an
 * idle agent small; while the agent moves bulk data it goes back to V8's own dynamic 1.1–4×: every
 * MiB in flight is a buffer, and at 1.2× the fetching agent of a 1 GiB image spent 2.5 s of its
 * 11 s fetch in full GCs (0.3 s with V8's own growth, and the fetch took 7–8 s; docs/benchmarks.md).
 * V8 reads the flag at every GC, so it can change while the process runs.
 */
const LEAN = '--heap-growing-percent=20'
const V8_OWN = '--heap-growing-percent=0'
/** Bulk mode lasts this long after the last bulk work (a fetch's chunks come every few ms). */
export const BULK_LINGER_MS = 5_000

export class HeapMode {
  private lean = false
  private bulkUntil = 0
  private timer: NodeJS.Timeout | undefined

  constructor (private readonly setFlags: (flags: string) => void = setFlagsFromString, private readonly now: () => number = Date.now) {}

  /** The process's entry asks for the lean heap (agent processes; not tests, not library users). */
  leanHeap (): void {
    this.lean = true
    if (this.bulkUntil === 0) this.setFlags(LEAN)
  }

  /** Bulk data is moving (a chunk fetched or served): V8's own growth until BULK_LINGER_MS after the last one. */
  bulkWork (): void {
    if (!this.lean) return
    if (this.bulkUntil === 0) this.setFlags(V8_OWN)
    this.bulkUntil = this.now() + BULK_LINGER_MS
    if (this.timer !== undefined) return
    this.timer = setInterval(() => {
      if (this.now() < this.bulkUntil) return
      clearInterval(this.timer)
      this.timer = undefined
      this.bulkUntil = 0
      this.setFlags(LEAN)
    }, 1_000)
    this.timer.unref()
  }

  /** True while the heap grows as V8 likes (for tests and the log). */
  inBulk (): boolean {
    return this.bulkUntil !== 0
  }
}

/** The process's one heap mode. */
export const heapMode = new HeapMode()
