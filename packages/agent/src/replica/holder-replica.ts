import { createReadStream } from 'node:fs'
import { mkdir, open, readFile, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { decodeFrames, encodeVarint } from '@meshvirt/proto'
import { MAX_REPLICA_FRAME_BYTES } from './constants.js'
import { chunkDigest, hex, pointDigest, sameBytes } from './digest.js'
import { writeDurably } from './durable-file.js'
import { ChecksumMismatchError, ReplicaProtocolError } from './errors.js'
import { ImageWriter } from './image-writer.js'
import type { BaseImages } from './base-images.js'
import { answerOffer, compareVersions, emptyPosition, samePoint } from './position.js'
import { decodeReplicaMessage, encodeReplicaMessage } from './replica-codec.js'
import type { OfferAnswer, ReplicaChunk, ReplicaDisk, ReplicaPointHeader, ReplicaPosition, ReplicaRefusal } from './types.js'

/** What a holder persists as its exposed state (`position.json`). */
interface HolderRecord {
  version: 1
  position: ReplicaPosition
  disks: ReplicaDisk[]
}

interface Partial {
  header: ReplicaPointHeader
  digests: Uint8Array[]
  fh: FileHandle
  bytes: number
}

export interface ReplicaImages {
  position: ReplicaPosition
  /** The raw image of each disk, as of `position`. */
  disks: Array<ReplicaDisk & { path: string }>
}

export interface ApplyResult {
  answer: OfferAnswer
  applyMs: number
}

const POSITION = 'position.json'
const INCOMING_HEADER = 'incoming.json'
const INCOMING_DATA = 'incoming.part'
const JOURNAL_HEADER = 'journal.json'
const JOURNAL_DATA = 'journal.point'

/**
 * One VM's replica on a holder: raw disk images plus the position they hold, in `dir`.
 *
 * A point is received into `incoming.part` (each chunk verified against its sha256 and appended as a
 * frame), so an interrupted transfer resumes at the first chunk it lacks, even after a restart (the
 * file is re-verified). At the end the point digest is checked and the point is *committed*: renamed
 * to `journal.point`, its header to `journal.json` (durably: that rename is the commit). Then it is
 * applied: a full point into fresh `.next` images renamed over the old ones (a disk that is a layer
 * on a library image starts as that image, laid down by `bases`), an incremental in place;
 * then `position.json` is replaced and the journal removed. A crash anywhere in the apply leaves the
 * journal, which open() replays (writes are idempotent) before anything is exposed: the images and
 * position are only ever read through open()/images(), so no reader sees a half-applied point.
 * Not safe for concurrent use: the holder service runs one session per VM at a time.
 */
export class HolderReplica {
  private partial: Partial | undefined

  private constructor (readonly dir: string, readonly vmId: string, private record: HolderRecord, private readonly bases: BaseImages | undefined) {}

  /** `bases`: where full points on a library image find it; without, such points are refused (`base-unavailable`). */
  static async open (dir: string, vmId: string, bases?: BaseImages): Promise<HolderReplica> {
    await mkdir(dir, { recursive: true })
    const text = await readFile(join(dir, POSITION), 'utf8').catch(() => undefined)
    const record: HolderRecord = text === undefined ? { version: 1, position: emptyPosition(vmId), disks: [] } : JSON.parse(text) as HolderRecord
    const replica = new HolderReplica(dir, vmId, record, bases)
    await replica.replayJournal()
    return replica
  }

  get position (): ReplicaPosition {
    return { ...this.record.position }
  }

  /** Decide on an offered point; on acceptance, be ready to receive it from `receivedChunks`. */
  async offer (header: ReplicaPointHeader): Promise<OfferAnswer> {
    if (header.vmId !== this.vmId) return { position: this.position, receivedChunks: 0, refusal: 'invalid', detail: `this replica is of VM ${this.vmId}` }
    // A disk that grew (vm resize) takes incrementals: its new end reads as zeros until written,
    // here as in the guest. Any other change needs a full point.
    if (header.kind === 'incremental' && !sameOrGrownDisks(header.disks, this.record.disks)) {
      return { position: this.position, receivedChunks: 0, refusal: 'gap', detail: 'the disks changed: send a full point' }
    }
    const partial = await this.partialFor(header)
    const answer = answerOffer(this.record.position, header, partial)
    if (answer.refusal !== undefined) return answer
    const missing = this.baseMissing(header)
    if (missing !== undefined) return { position: this.position, receivedChunks: 0, ...missing }
    if (partial === undefined || answer.receivedChunks === 0) await this.startPartial(header)
    return answer
  }

  /** Verify one chunk of the accepted point and keep it (`encoded`: the ReplicaMessage as received, spares a re-encode). */
  async receive (chunk: ReplicaChunk, encoded?: Uint8Array): Promise<void> {
    const p = this.partial
    if (p === undefined) throw new ReplicaProtocolError('a chunk arrived before an accepted offer')
    if (chunk.index !== p.digests.length) throw new ReplicaProtocolError(`expected chunk ${p.digests.length}, got ${chunk.index}`)
    if (chunk.index >= p.header.chunkCount) throw new ReplicaProtocolError(`point ${p.header.seq} has ${p.header.chunkCount} chunks, got chunk ${chunk.index}`)
    for (const e of chunk.extents) {
      const disk = p.header.disks.find((d) => d.name === e.disk)
      if (disk === undefined || e.offset + e.length > disk.sizeBytes) throw new ReplicaProtocolError(`chunk ${chunk.index} writes ${e.disk} [${e.offset}, +${e.length}), outside the point's disks`)
    }
    if (!sameBytes(chunkDigest(chunk.index, chunk.extents, chunk.data), chunk.sha256)) {
      throw new ChecksumMismatchError(`chunk ${chunk.index} of point ${p.header.seq} (VM ${this.vmId}) does not match its sha256`)
    }
    const payload = encoded ?? encodeReplicaMessage({ type: 'chunk', chunk })
    const prefix = encodeVarint(payload.length)
    const { bytesWritten } = await p.fh.writev([prefix, payload], p.bytes)
    if (bytesWritten !== prefix.length + payload.length) throw new Error(`short write to ${join(this.dir, INCOMING_DATA)} (disk full?)`)
    p.bytes += bytesWritten
    p.digests.push(chunk.sha256)
  }

  /** The sender's end: verify the point digest, commit, apply. */
  async finish (digest: Uint8Array): Promise<ApplyResult> {
    const t0 = performance.now()
    const header = await this.commit(digest)
    await this.applyJournal(header, false)
    return { answer: { position: this.position, receivedChunks: header.chunkCount }, applyMs: performance.now() - t0 }
  }

  /**
   * Verify the point digest and make the point durable as the journal, without applying it yet
   * (finish() does both; a crash between the two is what open() recovers from).
   */
  async commit (digest: Uint8Array): Promise<ReplicaPointHeader> {
    const p = this.partial
    if (p === undefined) throw new ReplicaProtocolError('end of a point that was never offered')
    if (p.digests.length !== p.header.chunkCount) throw new ReplicaProtocolError(`point ${p.header.seq} ended after ${p.digests.length} of ${p.header.chunkCount} chunks`)
    if (!sameBytes(pointDigest(p.header, p.digests), digest)) {
      await this.discardPartial()
      throw new ChecksumMismatchError(`point ${p.header.seq} of VM ${this.vmId} does not match its digest: discarded`)
    }
    await p.fh.sync()
    await p.fh.close()
    this.partial = undefined
    await rename(join(this.dir, INCOMING_DATA), join(this.dir, JOURNAL_DATA))
    // The commit: once journal.json exists, the point will be applied, now or at the next open().
    await writeDurably(join(this.dir, JOURNAL_HEADER), JSON.stringify({ header: p.header, digest: hex(digest) }))
    await rm(join(this.dir, INCOMING_HEADER), { force: true })
    return p.header
  }

  /** The images as of the exposed position (a pending journal is applied first). */
  async images (): Promise<ReplicaImages> {
    await this.replayJournal()
    return { position: this.position, disks: this.record.disks.map((d) => ({ ...d, path: this.imagePath(d.name) })) }
  }

  /** Bytes this replica takes on the holder's disk (images, partial, journal), for the ledger and the advert. */
  async usageBytes (): Promise<number> {
    let total = 0
    for (const name of await readdir(this.dir)) {
      const st = await stat(join(this.dir, name)).catch(() => undefined)
      if (st?.isFile() === true) total += st.blocks * 512
    }
    return total
  }

  async discardPartial (): Promise<void> {
    await this.partial?.fh.close().catch(() => {})
    this.partial = undefined
    await rm(join(this.dir, INCOMING_DATA), { force: true })
    await rm(join(this.dir, INCOMING_HEADER), { force: true })
  }

  /** Let go of open files; the partial stays on disk for a later resume. */
  async close (): Promise<void> {
    await this.partial?.fh.close().catch(() => {})
    this.partial = undefined
  }

  /** Apply a committed point left by a crash (re-verified first: it was written before the crash). */
  private async replayJournal (): Promise<void> {
    const text = await readFile(join(this.dir, JOURNAL_HEADER), 'utf8').catch(() => undefined)
    if (text === undefined) {
      await rm(join(this.dir, JOURNAL_DATA), { force: true })
      return
    }
    const { header } = JSON.parse(text) as { header: ReplicaPointHeader, digest: string }
    await this.applyJournal(header, true)
  }

  private async applyJournal (header: ReplicaPointHeader, verify: boolean): Promise<void> {
    const data = join(this.dir, JOURNAL_DATA)
    if (compareVersions(header, this.record.position) > 0 && (!verify || await this.journalIntact(header))) {
      const full = header.kind === 'full'
      const targets = new Map(header.disks.map((d) => [d.name, { path: this.imagePath(d.name) + (full ? '.next' : ''), sizeBytes: d.sizeBytes, fresh: full && d.baseDigest === undefined }]))
      for (const d of header.disks) {
        if (!full || d.baseDigest === undefined) continue
        if (this.bases === undefined) throw new ReplicaProtocolError(`point ${header.seq} of VM ${this.vmId} is a layer on ${d.baseDigest}, and this holder has no image library`)
        await this.bases.materialize(d.baseDigest, this.imagePath(d.name) + '.next', d.sizeBytes)
      }
      const writer = await ImageWriter.open(targets)
      try {
        for await (const chunk of chunksOf(data)) await writer.write(chunk)
        await writer.sync()
      } finally {
        await writer.close()
      }
      if (full) {
        for (const d of header.disks) await rename(this.imagePath(d.name) + '.next', this.imagePath(d.name))
        await this.removeOtherImages(header.disks)
      }
      const record: HolderRecord = { version: 1, position: { vmId: this.vmId, epoch: header.epoch, seq: header.seq, takenAt: header.takenAt, appliedAt: Date.now() }, disks: header.disks }
      await writeDurably(join(this.dir, POSITION), JSON.stringify(record))
      this.record = record
    }
    await rm(join(this.dir, JOURNAL_HEADER), { force: true })
    await rm(data, { force: true })
  }

  private async journalIntact (header: ReplicaPointHeader): Promise<boolean> {
    const text = await readFile(join(this.dir, JOURNAL_HEADER), 'utf8')
    const digests: Uint8Array[] = []
    try {
      for await (const chunk of chunksOf(join(this.dir, JOURNAL_DATA))) {
        if (chunk.index !== digests.length || !sameBytes(chunkDigest(chunk.index, chunk.extents, chunk.data), chunk.sha256)) return false
        digests.push(chunk.sha256)
      }
    } catch {
      return false
    }
    return hex(pointDigest(header, digests)) === (JSON.parse(text) as { digest: string }).digest
  }

  /** Why a full point on library images cannot be taken yet (their fetch is started), or undefined. */
  private baseMissing (header: ReplicaPointHeader): { refusal: ReplicaRefusal, detail: string } | undefined {
    for (const d of header.disks) {
      if (d.baseDigest === undefined) continue
      if (this.bases === undefined) return { refusal: 'base-unavailable', detail: `disk ${d.name} is a layer on ${d.baseDigest}, and this holder has no image library: send it whole` }
      const wanted = this.bases.want(d.baseDigest)
      if (wanted.state === 'fetching') return { refusal: 'base-missing', detail: `disk ${d.name} is a layer on ${d.baseDigest}, which this holder is fetching (${wanted.detail})` }
      if (wanted.state === 'unavailable') return { refusal: 'base-unavailable', detail: `disk ${d.name} is a layer on ${d.baseDigest}, which this holder cannot get (${wanted.detail}): send it whole` }
    }
    return undefined
  }

  /** The partial of this very point, from memory or (after a restart) from disk, re-verified. */
  private async partialFor (header: ReplicaPointHeader): Promise<{ header: ReplicaPointHeader, chunks: number } | undefined> {
    if (this.partial !== undefined && samePoint(this.partial.header, header)) return { header, chunks: this.partial.digests.length }
    await this.discardPartialInMemory()
    const text = await readFile(join(this.dir, INCOMING_HEADER), 'utf8').catch(() => undefined)
    if (text === undefined || !samePoint(JSON.parse(text) as ReplicaPointHeader, header)) return undefined
    const path = join(this.dir, INCOMING_DATA)
    const digests: Uint8Array[] = []
    let bytes = 0
    try {
      for await (const frame of decodeFrames(createReadStream(path, { highWaterMark: 4 * 1024 * 1024 }), MAX_REPLICA_FRAME_BYTES + 64)) {
        const m = decodeReplicaMessage(frame)
        if (m.type !== 'chunk' || m.chunk.index !== digests.length || !sameBytes(chunkDigest(m.chunk.index, m.chunk.extents, m.chunk.data), m.chunk.sha256)) break
        digests.push(m.chunk.sha256)
        bytes += encodeVarint(frame.length).length + frame.length
      }
    } catch { /* a torn last frame (crash mid-write): keep what came before it */ }
    const fh = await open(path, 'r+').catch(() => undefined)
    if (fh === undefined) return undefined
    await fh.truncate(bytes)
    this.partial = { header, digests, fh, bytes }
    return { header, chunks: digests.length }
  }

  private async startPartial (header: ReplicaPointHeader): Promise<void> {
    await this.discardPartial()
    await writeDurably(join(this.dir, INCOMING_HEADER), JSON.stringify(header))
    this.partial = { header, digests: [], fh: await open(join(this.dir, INCOMING_DATA), 'w+'), bytes: 0 }
  }

  private async discardPartialInMemory (): Promise<void> {
    await this.partial?.fh.close().catch(() => {})
    this.partial = undefined
  }

  private async removeOtherImages (keep: readonly ReplicaDisk[]): Promise<void> {
    for (const name of await readdir(this.dir)) {
      if (name.endsWith('.raw') && !keep.some((d) => `${d.name}.raw` === name)) await rm(join(this.dir, name), { force: true })
    }
  }

  private imagePath (disk: string): string {
    return join(this.dir, `${disk}.raw`)
  }
}

async function * chunksOf (path: string): AsyncGenerator<ReplicaChunk> {
  for await (const frame of decodeFrames(createReadStream(path, { highWaterMark: 4 * 1024 * 1024 }), MAX_REPLICA_FRAME_BYTES + 64)) {
    const m = decodeReplicaMessage(frame)
    if (m.type !== 'chunk') throw new ReplicaProtocolError(`${path} holds a ${m.type}, not a chunk`)
    yield m.chunk
  }
}

/** The point's disks are the replica's, in order, each as big or bigger. */
export function sameOrGrownDisks (point: readonly ReplicaDisk[], replica: readonly ReplicaDisk[]): boolean {
  return point.length === replica.length && point.every((d, i) => d.name === replica[i]?.name && d.sizeBytes >= (replica[i]?.sizeBytes ?? Infinity))
}
