/** A seeded PRNG (mulberry32) and the draws the model needs: every run is reproducible from its seed. */
export class Random {
  private state: number

  constructor (seed: number) {
    this.state = seed >>> 0
  }

  /** Uniform in [0, 1). */
  next (): number {
    let t = (this.state = (this.state + 0x6D2B79F5) >>> 0)
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** Integer in [0, n). */
  int (n: number): number {
    return Math.floor(this.next() * n)
  }

  /** Uniform in [lo, hi). */
  uniform (lo: number, hi: number): number {
    return lo + (hi - lo) * this.next()
  }

  /** Exponential with the given mean. */
  exp (mean: number): number {
    return -mean * Math.log(1 - this.next())
  }

  /** Fisher–Yates, in place. */
  shuffle<T> (xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(i + 1)
      const t = xs[i] as T
      xs[i] = xs[j] as T
      xs[j] = t
    }
    return xs
  }

  /** `k` distinct picks from `xs` (all of them if k ≥ length). */
  sample<T> (xs: readonly T[], k: number): T[] {
    if (k >= xs.length) return [...xs]
    const copy = [...xs]
    for (let i = 0; i < k; i++) {
      const j = i + this.int(copy.length - i)
      const t = copy[i] as T
      copy[i] = copy[j] as T
      copy[j] = t
    }
    return copy.slice(0, k)
  }
}
