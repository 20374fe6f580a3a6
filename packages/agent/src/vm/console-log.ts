import { open } from 'node:fs/promises'

/** Largest console piece one control response carries. */
export const MAX_CONSOLE_CHUNK = 64 * 1024

/**
 * A piece of a guest's serial log from `offset`; `maxBytes` 0 only reports the size (where a
 * `--follow` should start). A log not written yet reads as empty.
 */
export async function readConsoleLog (file: string, offset: number, maxBytes: number): Promise<{ data: Uint8Array, nextOffset: number }> {
  let fh
  try {
    fh = await open(file, 'r')
  } catch {
    return { data: new Uint8Array(0), nextOffset: 0 }
  }
  try {
    const size = (await fh.stat()).size
    const start = Math.min(Math.max(0, offset), size)
    const length = Math.min(Math.max(0, maxBytes), MAX_CONSOLE_CHUNK, size - start)
    const data = new Uint8Array(length)
    if (length > 0) await fh.read(data, 0, length, start)
    return { data, nextOffset: start + length }
  } finally {
    await fh.close()
  }
}
