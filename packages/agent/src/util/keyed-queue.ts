/**
 * Work by key: what is queued under one key runs one at a time, in order of arrival; keys run
 * independently (a VM's drives, a VM's lease hooks). A failure is handed to `onError` and never
 * stops the work queued after it.
 */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<void>>()
  private readonly pending = new Map<string, number>()

  /** Runs `fn` after the key's earlier work; resolves when it has ended (never rejects). */
  async run (key: string, fn: () => Promise<void>, onError: (err: unknown) => void): Promise<void> {
    this.pending.set(key, (this.pending.get(key) ?? 0) + 1)
    const next = (this.tails.get(key) ?? Promise.resolve()).then(fn).catch(onError).finally(() => {
      const n = (this.pending.get(key) ?? 1) - 1
      if (n === 0) this.pending.delete(key)
      else this.pending.set(key, n)
      if (this.tails.get(key) === next) this.tails.delete(key)
    })
    this.tails.set(key, next)
    await next
  }

  /** Runs `fn` in its turn among the key's work and gives back its result, or rejects with its error. */
  async call<T> (key: string, fn: () => Promise<T>): Promise<T> {
    const out: Array<{ value: T } | { err: unknown }> = []
    await this.run(key, async () => { out.push({ value: await fn() }) }, (err) => { out.push({ err }) })
    const r = out[0] as { value: T } | { err: unknown }
    if ('err' in r) throw r.err
    return r.value
  }

  /** Whether work for `key` is queued or running. */
  busy (key: string): boolean {
    return this.pending.has(key)
  }

  /** Resolves once everything queued so far has ended. */
  async idle (): Promise<void> {
    await Promise.allSettled([...this.tails.values()])
  }
}
