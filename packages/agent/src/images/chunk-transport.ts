import { pb } from '@meshvirt/proto'
import type { Logger } from '../log/logger.js'
import { BufferPool } from './buffer-pool.js'
import { DirectChunkClient } from './direct-chunks.js'
import { decodeImageResponse } from './image-protocol.js'
import { CHUNK_BYTES } from './manifest.js'

/** Connections per holder on the direct path (requests are pipelined on each; the least busy one is asked). */
export const DIRECT_CONNECTIONS = 4
/** A holder whose direct path failed is asked over the mesh for this long. */
const DIRECT_RETRY_MS = 30_000

interface Pool { clients: DirectChunkClient[], opening?: Promise<void>, failedAt?: number }

/**
 * How a fetcher reaches a holder: straight over TLS-PSK when the holder opens a direct session
 * (asked over the mesh, which carries the one-time key), else over the mesh itself. A direct path
 * that fails falls back to the mesh for a while; the bytes are verified the same either way.
 */
export class ChunkTransport {
  private readonly pools = new Map<string, Pool>()
  /** Buffers for the chunks that come over the direct path (the envelope's few bytes beside them). */
  private readonly buffers = new BufferPool(CHUNK_BYTES + 64, 24)

  constructor (private readonly deps: {
    mesh: (hostId: string, bytes: Uint8Array, signal: AbortSignal) => Promise<Uint8Array>
    timeoutMs: number
    /** Off: the mesh only (tests, or a site that forbids other ports). */
    direct: boolean
    log: Logger
  }) {}

  async request (hostId: string, bytes: Uint8Array, signal: AbortSignal): Promise<Uint8Array> {
    const client = this.deps.direct ? await this.client(hostId, signal) : undefined
    if (client === undefined) return await this.deps.mesh(hostId, bytes, signal)
    try {
      return await client.request(bytes, this.deps.timeoutMs)
    } catch (err) {
      this.fail(hostId, err)
      return await this.deps.mesh(hostId, bytes, signal)
    }
  }

  /** An answer from `request` is read no more: a pooled buffer is used again. */
  recycle (answer: Uint8Array): void {
    this.buffers.put(answer)
  }

  close (): void {
    for (const pool of this.pools.values()) for (const c of pool.clients) c.close()
    this.pools.clear()
    this.buffers.drain()
  }

  /** The least busy open connection to the holder, opening the session first if needed; undefined: use the mesh. */
  private async client (hostId: string, signal: AbortSignal): Promise<DirectChunkClient | undefined> {
    let pool = this.pools.get(hostId)
    if (pool?.failedAt !== undefined && Date.now() - pool.failedAt < DIRECT_RETRY_MS) return undefined
    if (pool === undefined || pool.failedAt !== undefined) {
      pool = { clients: [] }
      this.pools.set(hostId, pool)
    }
    pool.clients = pool.clients.filter((c) => !c.closed)
    if (pool.clients.length === 0) {
      pool.opening ??= this.open(hostId, pool, signal).finally(() => { if (pool !== undefined) delete pool.opening })
      await pool.opening
    }
    let best: DirectChunkClient | undefined
    for (const c of pool.clients) if (!c.closed && (best === undefined || c.pending < best.pending)) best = c
    return best
  }

  private async open (hostId: string, pool: Pool, signal: AbortSignal): Promise<void> {
    try {
      const res = decodeImageResponse(await this.deps.mesh(hostId, pb.ImageRequest.encode({ openDirect: true }).finish(), signal))
      const session = { address: res.direct?.address ?? '', identity: res.direct?.identity ?? '', key: res.direct?.key ?? new Uint8Array() }
      pool.clients = await Promise.all(Array.from({ length: DIRECT_CONNECTIONS }, async () => await DirectChunkClient.connect(session, undefined, this.buffers)))
      this.deps.log.debug('direct chunk path open', { holder: hostId, address: session.address })
    } catch (err) {
      this.fail(hostId, err)
    }
  }

  private fail (hostId: string, err: unknown): void {
    const pool = this.pools.get(hostId)
    if (pool === undefined || pool.failedAt !== undefined) return
    for (const c of pool.clients) c.close()
    pool.clients = []
    pool.failedAt = Date.now()
    this.deps.log.info('direct chunk path unavailable: the mesh carries the chunks', { holder: hostId, err: (err as Error).message })
  }
}
