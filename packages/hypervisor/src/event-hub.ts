import type { AbortOptions } from './types.js'

/** Fan-out of driver events to listeners and to async iterators (one queue per iterator). */
export class EventHub<T> {
  private readonly listeners = new Set<(event: T) => void>()

  on (listener: (event: T) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  emit (event: T): void {
    for (const listener of [...this.listeners]) {
      try { listener(event) } catch { /* a listener's bug must not stop the driver */ }
    }
  }

  async * iterate (options: AbortOptions = {}): AsyncGenerator<T> {
    const queue: T[] = []
    let wake: (() => void) | undefined
    const off = this.on((event) => { queue.push(event); wake?.() })
    const onAbort = (): void => wake?.()
    options.signal?.addEventListener('abort', onAbort)
    try {
      while (options.signal?.aborted !== true) {
        const next = queue.shift()
        if (next !== undefined) { yield next; continue }
        await new Promise<void>((resolve) => { wake = resolve })
        wake = undefined
      }
    } finally {
      off()
      options.signal?.removeEventListener('abort', onAbort)
    }
  }
}
