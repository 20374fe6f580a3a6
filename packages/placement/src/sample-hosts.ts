/**
 * `count` distinct hosts drawn uniformly from `hosts`, in O(count) time and memory: a partial
 * Fisher–Yates shuffle that records only the swapped slots, so a 10,000-host view costs no more
 * to sample than a 100-host one.
 */
export function sampleHosts<T> (hosts: readonly T[], count: number, random: () => number): T[] {
  const n = hosts.length
  const k = Math.max(0, Math.min(n, Math.floor(count)))
  const swapped = new Map<number, number>()
  const out: T[] = []
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(random() * (n - i))
    const atJ = swapped.get(j) ?? j
    const atI = swapped.get(i) ?? i
    swapped.set(j, atI)
    out.push(hosts[atJ] as T)
  }
  return out
}
