import { createHash, randomBytes } from 'node:crypto'
import { link, mkdir, open, readdir, readFile, rename, rm, stat, statfs, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ControlError } from '../control/errors.js'
import { KeyedQueue } from '../util/keyed-queue.js'
import { heapMode } from '../heap-mode.js'
import { HaveBitmap } from './have-bitmap.js'
import type { BufferPool } from './buffer-pool.js'
import { fileBlocks, hashRange, ImageFiles } from './image-files.js'
import { digestHex } from './image-ref.js'
import { CHUNK_BYTES, chunkCount, chunkMatches, chunkSpan, MAX_CHUNKS, type ImageFormat, type ImageManifest } from './manifest.js'

/** The have file is rewritten at most this often while chunks arrive. */
export const HAVE_WRITE_GAP_MS = 100

/** What this host keeps of one image. */
export interface StoredImage {
  manifest: ImageManifest
  /** NAME:TAG names the bytes go by here. */
  refs: string[]
  /** When the newest name was given (the importer's clock). */
  namedAtMs: number
  /** Last time a VM was prepared from it (eviction: oldest-used first). */
  usedAtMs: number
  have: HaveBitmap
}

interface Meta { refs: string[], namedAtMs: number, usedAtMs: number }

/** Space kept free beyond an image's size before a fetch starts (the VMs' overlays grow too). */
const FREE_MARGIN_BYTES = 256 * 1024 * 1024

/**
 * The images this host holds, under `<dataDir>/images/<hex>/`: `image` (complete, the read-only
 * base of VM overlays), or `image.partial` and `have` while fetching; `manifest.json`, `meta.json`.
 * Bytes are written once: a partial image becomes `image` only after its whole digest is checked.
 */
export class ImageStore {
  private readonly images = new Map<string, StoredImage>()
  /** Per image, the writer of its have file while one runs (writeHave). */
  private readonly haveWrites = new Map<string, Promise<void>>()
  /** Images whose have file is behind their bitmap. */
  private readonly haveDirty = new Set<string>()
  /** Per image, a have file that could not be written (the next chunk written fails with it). */
  private readonly haveErrors = new Map<string, unknown>()
  private readonly files = new ImageFiles()
  /** Per image, the check of its chunks under way (checkChunks). */
  private readonly checks = new KeyedQueue()

  constructor (readonly dir: string) {}

  /** Reads what the dir holds (after a restart: complete images, and fetches to resume). */
  async load (): Promise<void> {
    await mkdir(this.dir, { recursive: true })
    for (const name of await readdir(this.dir)) {
      if (name.startsWith('.')) { await rm(join(this.dir, name), { recursive: true, force: true }); continue }
      const dir = join(this.dir, name)
      try {
        const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as ImageManifest
        const meta = JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8')) as Meta
        // `image` with `image.partial` and `have` beside it: a copy being repaired (checkChunks).
        const complete = await exists(join(dir, 'image')) && !(await exists(join(dir, 'image.partial')) && await exists(join(dir, 'have')))
        const have = complete ? HaveBitmap.full(manifest.chunks.length) : HaveBitmap.from(manifest.chunks.length, await readFile(join(dir, 'have')).catch(() => new Uint8Array(1)))
        this.images.set(manifest.digest, { manifest, ...meta, have })
      } catch {
        // Half-created (the agent died between mkdir and the manifest): nothing to keep.
        await rm(dir, { recursive: true, force: true })
      }
    }
  }

  list (): StoredImage[] {
    return [...this.images.values()]
  }

  get (digest: string): StoredImage | undefined {
    return this.images.get(digest)
  }

  /** The complete image's path (a VM's base), or undefined while it is not all here. */
  path (digest: string): string | undefined {
    const img = this.images.get(digest)
    return img !== undefined && img.have.complete() ? join(this.dir, digestHex(digest), 'image') : undefined
  }

  /**
   * Copies `file` into the store, hashing it as it goes (one pass: the digest is of the bytes kept).
   * Already held: only the name is added. Nothing is left behind when it fails (disk full included).
   */
  async importFile (file: string, format: ImageFormat, ref: string, nowMs: number, onProgress?: (doneBytes: number, totalBytes: number) => void): Promise<{ image: StoredImage, imported: boolean }> {
    const size = (await stat(file)).size
    if (size === 0) throw new ControlError('INVALID_ARGUMENT', `${file} is empty`)
    if (chunkCount(size) > MAX_CHUNKS) throw new ControlError('INVALID_ARGUMENT', `${file} is ${size} bytes; the library takes images up to ${MAX_CHUNKS * CHUNK_BYTES} bytes`)
    await this.ensureSpace(size, file)
    const tmp = join(this.dir, `.import-${randomBytes(6).toString('hex')}`)
    try {
      const whole = createHash('sha256')
      const chunks: string[] = []
      const out = await open(tmp, 'w')
      let done = 0
      let chunk = createHash('sha256')
      let inChunk = 0
      try {
        for await (const block of fileBlocks(file)) {
          heapMode.bulkWork()
          await out.write(block)
          whole.update(block)
          // Blocks need not fall on chunk boundaries: split them where a chunk ends.
          for (let at = 0; at < block.length;) {
            const take = Math.min(block.length - at, CHUNK_BYTES - inChunk)
            chunk.update(block.subarray(at, at + take))
            at += take
            inChunk += take
            if (inChunk === CHUNK_BYTES) { chunks.push(chunk.digest('hex')); chunk = createHash('sha256'); inChunk = 0 }
          }
          done += block.length
          onProgress?.(done, size)
        }
        if (inChunk > 0) chunks.push(chunk.digest('hex'))
      } finally {
        await out.close()
      }
      if (done !== size) throw new ControlError('ABORTED', `${file} changed size while it was imported (${size} → ${done} bytes): import it again`)
      const digest = 'sha256:' + whole.digest('hex')
      const existing = this.images.get(digest)
      if (existing?.have.complete() === true) {
        await rm(tmp, { force: true })
        return { image: await this.name(digest, ref, nowMs), imported: false }
      }
      const manifest: ImageManifest = { digest, sizeBytes: size, format, chunkBytes: CHUNK_BYTES, chunks }
      const dir = join(this.dir, digestHex(digest))
      // A fetch of the same bytes under way is superseded by the import.
      await this.files.drop(digest)
      await rm(dir, { recursive: true, force: true })
      await mkdir(dir)
      await rename(tmp, join(dir, 'image'))
      const image: StoredImage = { manifest, refs: [ref], namedAtMs: nowMs, usedAtMs: 0, have: HaveBitmap.full(chunks.length) }
      await this.writeMeta(dir, manifest, image)
      this.images.set(digest, image)
      return { image, imported: true }
    } catch (err) {
      await rm(tmp, { force: true })
      throw spaceError(err, file)
    }
  }

  /** Adds a name to held bytes (re-import, or a fetcher learning the name). */
  async name (digest: string, ref: string, nowMs: number): Promise<StoredImage> {
    const img = this.require(digest)
    if (!img.refs.includes(ref)) img.refs = [...img.refs, ref].sort()
    img.namedAtMs = Math.max(img.namedAtMs, nowMs)
    await this.writeMeta(join(this.dir, digestHex(digest)), img.manifest, img)
    return img
  }

  /** Drops a name; the bytes stay (a VM may need them: eviction decides). */
  async unname (digest: string, ref: string): Promise<void> {
    const img = this.images.get(digest)
    if (img === undefined || !img.refs.includes(ref)) return
    img.refs = img.refs.filter((r) => r !== ref)
    await this.writeMeta(join(this.dir, digestHex(digest)), img.manifest, img)
  }

  async touch (digest: string, nowMs: number): Promise<void> {
    const img = this.require(digest)
    img.usedAtMs = nowMs
    await this.writeMeta(join(this.dir, digestHex(digest)), img.manifest, img)
  }

  /** Starts (or resumes) a fetch: the manifest is kept, the partial file sized, the chunks held so far known. */
  async beginFetch (manifest: ImageManifest, refs: string[], namedAtMs: number): Promise<StoredImage> {
    const held = this.images.get(manifest.digest)
    if (held !== undefined) return held
    await this.ensureSpace(manifest.sizeBytes, manifest.digest)
    const dir = join(this.dir, digestHex(manifest.digest))
    try {
      await this.files.drop(manifest.digest)
      this.haveErrors.delete(manifest.digest)
      await mkdir(dir, { recursive: true })
      const partial = await open(join(dir, 'image.partial'), 'w')
      try { await partial.truncate(manifest.sizeBytes) } finally { await partial.close() }
      const image: StoredImage = { manifest, refs: [...refs].sort(), namedAtMs, usedAtMs: 0, have: HaveBitmap.empty(manifest.chunks.length) }
      await writeFile(join(dir, 'have'), image.have.toBytes())
      await this.writeMeta(dir, manifest, image)
      this.images.set(manifest.digest, image)
      return image
    } catch (err) {
      await rm(dir, { recursive: true, force: true })
      throw spaceError(err, manifest.digest)
    }
  }

  /**
   * Writes a verified chunk into the partial image. Throws if the bytes are not chunk `i`. The chunk
   * counts as held once its bytes are written; the have file follows (writeHave) without this call
   * waiting for it: it only ever claims chunks whose bytes were written before it was.
   */
  async writeChunk (digest: string, i: number, bytes: Uint8Array): Promise<void> {
    const img = this.require(digest)
    if (img.have.has(i)) return
    const failed = this.haveErrors.get(digest)
    if (failed !== undefined) throw spaceError(failed, digest)
    if (!chunkMatches(img.manifest, i, bytes)) throw new ControlError('DATA_LOSS', `chunk ${i} of ${digest} does not match its manifest`)
    const dir = join(this.dir, digestHex(digest))
    try {
      await this.files.with(digest, async () => ({ path: join(dir, 'image.partial'), flags: 'r+' }), async (f) => {
        await f.write(bytes, 0, bytes.length, chunkSpan(img.manifest, i).offset)
      })
    } catch (err) {
      throw spaceError(err, digest)
    }
    img.have.set(i)
    this.writeHave(digest, dir)
  }

  /** Resolves once the image's have file says what its bitmap says now (a fetch that ends waits for it). */
  async settled (digest: string): Promise<void> {
    await this.haveWrites.get(digest)
  }

  /**
   * One writer per image, writing the bitmap as it is when each write starts, again while chunks
   * arrived meanwhile: never an older bitmap after a newer one (a resume would refetch, or worse,
   * trust), and one write for many chunks when they come faster than the disk takes the file — at
   * most one every HAVE_WRITE_GAP_MS (a crash costs at most that much refetching; writing it per
   * chunk was 0.35 s of a 1 GiB fetch's event loop in opening and closing the file).
   */
  private writeHave (digest: string, dir: string): void {
    this.haveDirty.add(digest)
    if (this.haveWrites.has(digest)) return
    const run = async (): Promise<void> => {
      let img: StoredImage | undefined
      try {
        while (this.haveDirty.delete(digest)) {
          img = this.images.get(digest)
          if (img !== undefined && !img.have.complete()) {
            await writeFile(join(dir, 'have'), img.have.toBytes())
            await new Promise((resolve) => setTimeout(resolve, HAVE_WRITE_GAP_MS))
          }
        }
      } catch (err) {
        // Unless the image went meanwhile (removed: its dir with it).
        if (img !== undefined && this.images.get(digest) === img) this.haveErrors.set(digest, err)
      } finally {
        // In the same step as the loop's last look at haveDirty: a chunk written after it starts a new writer.
        this.haveWrites.delete(digest)
      }
    }
    // Registered before it runs: a writer that finds nothing to write still ends after this line.
    this.haveWrites.set(digest, Promise.resolve().then(run))
  }

  /**
   * Every chunk is in: the whole image is hashed, and only if it is the digest does the partial file
   * become the image. A mismatch (a chunk the disk lost) clears the chunks that no longer match.
   */
  async finishFetch (digest: string): Promise<boolean> {
    const img = this.require(digest)
    const dir = join(this.dir, digestHex(digest))
    const partial = join(dir, 'image.partial')
    if ((await hashRange(partial, { offset: 0, length: img.manifest.sizeBytes })) === digestHex(digest)) {
      await this.settled(digest)
      this.haveErrors.delete(digest)
      await rename(partial, join(dir, 'image'))
      // A repaired copy's partial name is a second link to `image`, which rename leaves in place.
      await rm(partial, { force: true })
      await rm(join(dir, 'have'), { force: true })
      return true
    }
    await this.settled(digest)
    const have = HaveBitmap.empty(img.manifest.chunks.length)
    for (let i = 0; i < img.manifest.chunks.length; i++) {
      if ((await hashRange(partial, chunkSpan(img.manifest, i))) === img.manifest.chunks[i]) have.set(i)
    }
    img.have = have
    await writeFile(join(dir, 'have'), have.toBytes())
    return false
  }

  /**
   * Another host was served chunks of this copy that were not the image. Each one held is checked on
   * disk; those that no longer match are no longer held, so they are neither served nor advertised
   * and a fetch gets them again. A complete copy becomes a fetch: `image.partial` is linked to the
   * same file, so the repair writes through the name VMs' overlays read as their base. Returns the
   * chunks found damaged (none: the copy is sound, and nothing changes).
   */
  async checkChunks (digest: string, chunks: number[]): Promise<number[]> {
    // One check of an image at a time: two fetchers may report the same copy at once.
    return await this.checks.call(digest, async () => await this.check(digest, chunks))
  }

  private async check (digest: string, chunks: number[]): Promise<number[]> {
    const img = this.images.get(digest)
    if (img === undefined) return []
    const dir = join(this.dir, digestHex(digest))
    const wasComplete = img.have.complete()
    const file = join(dir, wasComplete ? 'image' : 'image.partial')
    const damaged: number[] = []
    for (const i of new Set(chunks)) {
      if (img.have.has(i) && await hashRange(file, chunkSpan(img.manifest, i)) !== img.manifest.chunks[i]) damaged.push(i)
    }
    if (damaged.length === 0) return []
    if (wasComplete) {
      await rm(join(dir, 'image.partial'), { force: true })
      await link(join(dir, 'image'), join(dir, 'image.partial'))
    }
    for (const i of damaged) img.have.clear(i)
    // The handle open on `image` is read-only: the repair's writes open the partial name anew.
    if (wasComplete) await this.files.drop(digest)
    await this.settled(digest)
    await writeFile(join(dir, 'have'), img.have.toBytes())
    return damaged
  }

  /**
   * Chunk `i`'s bytes if held (complete image or partial). With `room`, the buffer has that many
   * bytes free before them (the caller writes its envelope there: the MiB is not copied again);
   * with `buffers`, it comes from that pool.
   */
  async readChunk (digest: string, i: number, room = 0, buffers?: BufferPool): Promise<Buffer | undefined> {
    const img = this.images.get(digest)
    if (img === undefined || !img.have.has(i)) return undefined
    const dir = join(this.dir, digestHex(digest))
    const span = chunkSpan(img.manifest, i)
    // A fetch's handle is open on the partial file (renamed to `image` once whole: the same file).
    const file = async (): Promise<{ path: string, flags: 'r' | 'r+' }> => img.have.complete() && await exists(join(dir, 'image')) ? { path: join(dir, 'image'), flags: 'r' } : { path: join(dir, 'image.partial'), flags: 'r+' }
    return await this.files.with(digest, file, async (f) => {
      const buf = buffers?.get(room + span.length) ?? Buffer.allocUnsafe(room + span.length)
      const { bytesRead } = await f.read(buf, room, span.length, span.offset)
      if (bytesRead === span.length) return buf
      buffers?.put(buf)
      return undefined
    })
  }

  async remove (digest: string): Promise<void> {
    this.images.delete(digest)
    this.haveErrors.delete(digest)
    await this.files.drop(digest)
    await rm(join(this.dir, digestHex(digest)), { recursive: true, force: true })
  }

  /** Closes the files held open (the agent stops). */
  async close (): Promise<void> {
    await this.files.close()
  }

  /** Bytes on disk, in all. */
  usedBytes (): number {
    return this.list().reduce((n, img) => n + img.manifest.sizeBytes, 0)
  }

  private require (digest: string): StoredImage {
    const img = this.images.get(digest)
    if (img === undefined) throw new ControlError('NOT_FOUND', `image ${digest} is not on this host`)
    return img
  }

  private async ensureSpace (bytes: number, what: string): Promise<void> {
    await mkdir(this.dir, { recursive: true })
    const fs = await statfs(this.dir)
    const free = Number(fs.bavail) * Number(fs.bsize)
    if (free < bytes + FREE_MARGIN_BYTES) {
      throw new ControlError('RESOURCE_EXHAUSTED', `not enough space for ${what} (${bytes} bytes; ${free} free in ${this.dir}, ${FREE_MARGIN_BYTES} kept free): free space or evict images`)
    }
  }

  private async writeMeta (dir: string, manifest: ImageManifest, img: Meta): Promise<void> {
    await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest) + '\n')
    const meta: Meta = { refs: img.refs, namedAtMs: img.namedAtMs, usedAtMs: img.usedAtMs }
    await writeFile(join(dir, 'meta.json.tmp'), JSON.stringify(meta) + '\n')
    await rename(join(dir, 'meta.json.tmp'), join(dir, 'meta.json'))
  }
}

async function exists (path: string): Promise<boolean> {
  try { await stat(path); return true } catch { return false }
}

function spaceError (err: unknown, what: string): unknown {
  if ((err as NodeJS.ErrnoException).code === 'ENOSPC') return new ControlError('RESOURCE_EXHAUSTED', `the disk filled while storing ${what}; nothing was kept: free space and retry`)
  return err
}
