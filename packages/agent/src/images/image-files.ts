import { createHash } from 'node:crypto'
import { open, type FileHandle } from 'node:fs/promises'
import { CHUNK_BYTES } from './manifest.js'

/** An image file nobody read or wrote for this long is closed (a holder may serve it again later). */
export const FILE_IDLE_MS = 5_000

interface OpenFile { file: Promise<FileHandle>, users: number, dropped: boolean, timer?: NodeJS.Timeout }

/**
 * One open handle per image, shared by the chunks written and the chunks served, instead of an open
 * and a close per chunk (two more round trips to libuv's thread pool per MiB). Positional reads and
 * writes share it safely. A partial file keeps its handle when it is renamed to `image` (the same inode);
 * an image deleted or replaced must be `drop`ped first.
 */
export class ImageFiles {
  private readonly files = new Map<string, OpenFile>()

  constructor (private readonly idleMs = FILE_IDLE_MS) {}

  /** Runs `fn` with the image's handle, opening `path` with `flags` if it is not open yet. */
  async with<T> (key: string, path: () => Promise<{ path: string, flags: 'r' | 'r+' }>, fn: (f: FileHandle) => Promise<T>): Promise<T> {
    let entry = this.files.get(key)
    if (entry === undefined) {
      const opened: OpenFile = { file: path().then(async (p) => await open(p.path, p.flags)), users: 0, dropped: false }
      // A file that did not open is not kept: the next use tries again.
      opened.file.catch(() => { if (this.files.get(key) === opened) this.files.delete(key) })
      this.files.set(key, opened)
      entry = opened
    }
    clearTimeout(entry.timer)
    entry.users++
    try {
      return await fn(await entry.file)
    } finally {
      entry.users--
      if (entry.users === 0) this.idle(key, entry)
    }
  }

  /** Closes the image's handle (now, or when its last user is done): its file is about to go. */
  async drop (key: string): Promise<void> {
    const entry = this.files.get(key)
    if (entry === undefined) return
    this.files.delete(key)
    entry.dropped = true
    clearTimeout(entry.timer)
    if (entry.users === 0) await close(entry)
  }

  async close (): Promise<void> {
    await Promise.all([...this.files.keys()].map(async (k) => { await this.drop(k) }))
  }

  private idle (key: string, entry: OpenFile): void {
    if (entry.dropped) { void close(entry); return }
    entry.timer = setTimeout(() => {
      if (entry.users === 0 && this.files.get(key) === entry) void this.drop(key)
    }, this.idleMs)
    entry.timer.unref()
  }
}

async function close (entry: OpenFile): Promise<void> {
  await entry.file.then(async (f) => { await f.close() }, () => {})
}

/** SHA-256 of a span of a file (what lies past the file's end is not there to hash). */
export async function hashRange (path: string, span: { offset: number, length: number }): Promise<string> {
  const h = createHash('sha256')
  for await (const block of fileBlocks(path, span)) h.update(block)
  return h.digest('hex')
}

/**
 * A file's bytes in blocks, the whole file or a span of it, read into two buffers used in turn (the
 * next block is read while the caller works on this one). A block is valid until the next one is
 * asked for. A read stream allocated a new MiB per block: importing 1 GiB cost the agent ~1 s of GC
 * besides its two hashes, and the whole-image check that ends a 1 GiB fetch 1.03 s (0.45 s since).
 */
export async function * fileBlocks (path: string, span?: { offset: number, length: number }, blockBytes = CHUNK_BYTES): AsyncGenerator<Buffer> {
  const end = span === undefined ? Infinity : span.offset + span.length
  let at = span?.offset ?? 0
  if (at >= end) return
  const f = await open(path, 'r')
  const blocks = [Buffer.allocUnsafeSlow(blockBytes), Buffer.allocUnsafeSlow(blockBytes)] as const
  let k: 0 | 1 = 0
  const readAt = async (b: Buffer, pos: number): Promise<number> => (await f.read(b, 0, Math.min(blockBytes, end - pos), pos)).bytesRead
  let reading: Promise<number> | undefined = readAt(blocks[0], at)
  try {
    while (reading !== undefined) {
      const got = await reading
      if (got === 0) return
      at += got
      const block = blocks[k].subarray(0, got)
      k = k === 0 ? 1 : 0
      reading = at < end ? readAt(blocks[k], at) : undefined
      yield block
    }
  } finally {
    // A caller that stops early leaves a read in flight: it ends before the file is closed.
    await reading?.catch(() => {})
    await f.close()
  }
}
