/**
 * A concurrency limit that follows the load it meets, as TCP's congestion window does (additive
 * increase, multiplicative decrease): each task run under it reports whether it met congestion —
 * a peer that did not answer in time, or said it was too busy to. Congestion halves the limit (once
 * per `cooldownMs`: the tasks in flight when the cluster got busy all say so at about the same
 * time, and that is one signal, not many); a task that met none raises it by 1/limit, so by about
 * one for each limit's worth of quiet tasks. Tasks over the limit wait in FIFO order.
 *
 * The point is back-pressure: a storm of requests queues where it arrived, instead of turning
 * into streams that time out at busy hosts, whose retries are more load still.
 */
export interface AdaptiveLimitOptions {
  min: number
  max: number
  /** Where the limit starts (default `max`: a quiet cluster never waits for it to grow). */
  initial?: number
  cooldownMs: number
  now?: () => number
}

/** What a task tells the limit about the load it met. */
export interface LoadReport {
  /** A peer did not answer in time or refused as too busy: the limit shrinks. */
  congested: () => void
}

export class AdaptiveLimit {
  private window: number
  private active = 0
  private lastDecrease = -Infinity
  private readonly waiting: Array<() => void> = []
  private readonly now: () => number

  constructor (private readonly o: AdaptiveLimitOptions) {
    if (!(o.min >= 1 && o.max >= o.min)) throw new RangeError(`an adaptive limit needs 1 <= min <= max (got ${o.min}, ${o.max})`)
    this.window = Math.min(o.max, Math.max(o.min, o.initial ?? o.max))
    this.now = o.now ?? Date.now
  }

  /** The whole number of tasks that may run at once now. */
  get limit (): number {
    return Math.floor(this.window)
  }

  get running (): number {
    return this.active
  }

  get queued (): number {
    return this.waiting.length
  }

  async run<T> (task: (load: LoadReport) => Promise<T>): Promise<T> {
    // A waiter is handed its slot (counted in `active`) by admit(); newcomers queue behind waiters.
    if (this.active >= this.limit || this.waiting.length > 0) await new Promise<void>((resolve) => { this.waiting.push(resolve) })
    else this.active++
    let congested = false
    try {
      return await task({ congested: () => { congested = true } })
    } finally {
      this.active--
      this.settle(congested)
      this.admit()
    }
  }

  private settle (congested: boolean): void {
    if (!congested) {
      this.window = Math.min(this.o.max, this.window + 1 / this.window)
      return
    }
    const t = this.now()
    if (t - this.lastDecrease < this.o.cooldownMs) return
    this.lastDecrease = t
    this.window = Math.max(this.o.min, this.window / 2)
  }

  private admit (): void {
    while (this.active < this.limit && this.waiting.length > 0) {
      this.active++
      ;(this.waiting.shift() as () => void)()
    }
  }
}
