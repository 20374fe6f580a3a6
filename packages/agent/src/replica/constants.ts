/** Defaults of the replica stream, resolved once by whoever builds a sender or a holder. */

export const REPLICA_PROTOCOL = '/meshvirt/replica/1.0.0'

/**
 * Data bytes per chunk. 1 MiB: large enough that a chunk's header, digest and frame cost nothing
 * (a 3 MiB incremental is 3 chunks), small enough that a resume re-sends little and a frame stays far
 * below MAX_FRAME_BYTES (4 MiB) of @meshvirt/proto.
 */
export const CHUNK_BYTES = 1024 * 1024

/** Extents per chunk, so that a point of many tiny zero extents still makes bounded frames. */
export const MAX_CHUNK_EXTENTS = 4096

/** Largest frame either side accepts: a full chunk plus its extent list. */
export const MAX_REPLICA_FRAME_BYTES = CHUNK_BYTES + MAX_CHUNK_EXTENTS * 64 + 1024

/** A side that hears nothing for this long gives the stream up (the sender then resumes). */
export const REPLICA_IDLE_TIMEOUT_MS = 30_000

/** Bound on the holder's verify + apply of one point, as the sender waits for ReplicaApplied. */
export const APPLY_TIMEOUT_MS = 120_000

/**
 * yamux lets a stream's receive window grow to 16 MiB, all of which may arrive while the holder
 * writes to disk: libp2p resets a stream whose read buffer passes `maxReadBufferLength` (4 MiB by default).
 */
export const REPLICA_READ_BUFFER_BYTES = 32 * 1024 * 1024

/** Default bandwidth bound per holder, bytes/s (a quarter of a 1 Gbit/s link). */
export const HOLDER_BANDWIDTH_BYTES_PER_SEC = 32 * 1024 * 1024

/**
 * Replica streams per connection and direction: one session per VM, and an owner may replicate
 * hundreds of VMs to one holder at once; streams still closing count too. libp2p's defaults (32 in,
 * 64 out) reset the streams beyond them (found by the 24-VM test).
 */
export const MAX_REPLICA_STREAMS = 256
