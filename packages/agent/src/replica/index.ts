/**
 * The replica stream's building blocks (`/meshvirt/replica/1.0.0`), without the orchestration
 * (which holders, when, leases: the agent's). Owner side:
 *
 * ```ts
 * const point = await hv.replication.takePoint(vmId, { kind: 'incremental' })   // @meshvirt/hypervisor
 * const out = new OutgoingPoint(await hv.replication.openPoint(vmId, point.seq), { epoch })
 * const res = await shipPoint(node.libp2p, holderId, out, { bucket })           // resumes after a disconnect
 * await out.close(); await hv.replication.releasePoint(vmId, point.seq)         // once every holder has it
 * ```
 *
 * Holder side:
 * ```ts
 * const holder = new ReplicaHolderService(node.libp2p, { root: `${dataDir}/replicas`, accept, bases })  // bases: full points on library images
 * await holder.start()
 * const { position, disks } = await (await holder.replica(vmId)).images()       // to boot it (failover)
 * ```
 */
export * from './constants.js'
export * from './errors.js'
export type * from './types.js'
export { planChunks, planBytes, type ChunkPlan, type ChunkLimits } from './chunk-plan.js'
export { chunkDigest, pointDigest } from './digest.js'
export { answerOffer, compareVersions, emptyPosition, lagMs, pointsToSend, samePoint, type AvailablePoint } from './position.js'
export { TokenBucket, type TokenBucketInit } from './token-bucket.js'
export { encodeReplicaMessage, decodeReplicaMessage } from './replica-codec.js'
export { OutgoingPoint, type OutgoingPointInit } from './outgoing-point.js'
export { shipPoint, queryReplicaPosition, type ShipOptions, type ShipResult } from './replica-sender.js'
export type { BaseImages, BaseWanted } from './base-images.js'
export { HolderReplica, type ApplyResult, type ReplicaImages } from './holder-replica.js'
export { ReplicaHolderService, type AppliedEvent, type ReplicaHolderServiceInit } from './replica-holder-service.js'
