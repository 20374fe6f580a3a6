/**
 * The order in which member probing visits hosts (SWIM's round-robin over a shuffled list): every
 * host is visited once per round, in an order drawn afresh each round, so a silent host waits at
 * most one round for each prober, and probers do not all visit the same host at once.
 */
export class ProbeRotation {
  private order: string[] = []
  private next = 0

  constructor (private readonly random: () => number = Math.random) {}

  /** The next host of the round among `eligible` (hosts not eligible now are passed over). */
  pick (eligible: ReadonlySet<string>): string | undefined {
    if (eligible.size === 0) return undefined
    while (this.next < this.order.length) {
      const id = this.order[this.next++] as string
      if (eligible.has(id)) return id
    }
    this.order = shuffle([...eligible], this.random)
    this.next = 1
    return this.order[0]
  }
}

function shuffle (xs: string[], random: () => number): string[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const t = xs[i] as string
    xs[i] = xs[j] as string
    xs[j] = t
  }
  return xs
}
