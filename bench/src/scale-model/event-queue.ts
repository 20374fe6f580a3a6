/**
 * The model's clock: a binary min-heap of events in virtual time (ms), stored in typed arrays so
 * that millions of events cost no allocation. An event is a kind and three integer arguments;
 * ties are broken by insertion order, so a run is a pure function of its seed.
 */
export class EventQueue {
  private time = new Float64Array(1024)
  private order = new Float64Array(1024)
  private kind = new Int32Array(1024)
  private a = new Int32Array(1024)
  private b = new Int32Array(1024)
  private c = new Int32Array(1024)
  private size = 0
  private seq = 0
  /** Virtual time of the event being handled. */
  now = 0
  /** Events handled since construction (the model's work, reported). */
  handled = 0

  get length (): number {
    return this.size
  }

  push (time: number, kind: number, a = 0, b = 0, c = 0): void {
    // Never into the past: an event due before the current one happens now.
    if (time < this.now) time = this.now
    if (this.size === this.time.length) this.grow()
    let i = this.size++
    const s = this.seq++
    // Sift up.
    while (i > 0) {
      const p = (i - 1) >> 1
      if (this.time[p] as number < time || (this.time[p] === time && (this.order[p] as number) < s)) break
      this.move(p, i)
      i = p
    }
    this.set(i, time, s, kind, a, b, c)
  }

  /** Removes the earliest event into `out` and advances `now`; false when empty. */
  pop (out: { kind: number, a: number, b: number, c: number }): boolean {
    if (this.size === 0) return false
    this.now = this.time[0] as number
    out.kind = this.kind[0] as number
    out.a = this.a[0] as number
    out.b = this.b[0] as number
    out.c = this.c[0] as number
    this.handled++
    const last = --this.size
    if (last === 0) return true
    const t = this.time[last] as number
    const s = this.order[last] as number
    const k = this.kind[last] as number
    const la = this.a[last] as number
    const lb = this.b[last] as number
    const lc = this.c[last] as number
    let i = 0
    for (;;) {
      let m = 2 * i + 1
      if (m >= last) break
      if (m + 1 < last && this.less(m + 1, m)) m++
      if (t < (this.time[m] as number) || (t === this.time[m] && s < (this.order[m] as number))) break
      this.move(m, i)
      i = m
    }
    this.set(i, t, s, k, la, lb, lc)
    return true
  }

  /** Time of the earliest event, Infinity when empty. */
  peekTime (): number {
    return this.size === 0 ? Infinity : this.time[0] as number
  }

  clear (): void {
    this.size = 0
  }

  private less (i: number, j: number): boolean {
    const ti = this.time[i] as number
    const tj = this.time[j] as number
    return ti < tj || (ti === tj && (this.order[i] as number) < (this.order[j] as number))
  }

  private move (from: number, to: number): void {
    this.set(to, this.time[from] as number, this.order[from] as number, this.kind[from] as number, this.a[from] as number, this.b[from] as number, this.c[from] as number)
  }

  private set (i: number, t: number, s: number, k: number, a: number, b: number, c: number): void {
    this.time[i] = t
    this.order[i] = s
    this.kind[i] = k
    this.a[i] = a
    this.b[i] = b
    this.c[i] = c
  }

  private grow (): void {
    const n = this.time.length * 2
    const f64 = (x: Float64Array<ArrayBuffer>): Float64Array<ArrayBuffer> => { const y = new Float64Array(n); y.set(x); return y }
    const i32 = (x: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> => { const y = new Int32Array(n); y.set(x); return y }
    this.time = f64(this.time)
    this.order = f64(this.order)
    this.kind = i32(this.kind)
    this.a = i32(this.a)
    this.b = i32(this.b)
    this.c = i32(this.c)
  }
}
