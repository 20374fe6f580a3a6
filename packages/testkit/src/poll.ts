/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs` with the last state. */
export async function pollUntil<T> (check: () => Promise<T | undefined | false> | T | undefined | false, opts: { timeoutMs: number, intervalMs?: number, what: string }): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const v = await check()
      if (v !== undefined && v !== false) return v
    } catch (err) {
      lastError = err
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what}${lastError !== undefined ? ` (last error: ${String(lastError)})` : ''}`)
    }
    await new Promise((resolve) => setTimeout(resolve, opts.intervalMs ?? 100))
  }
}
