/**
 * @packageDocumentation
 *
 * The meshvirt wire contract: the protobuf messages generated from `proto/*.proto`
 * (static code, committed; `npm run proto` regenerates it) and length-prefixed framing.
 *
 * @example
 * ```ts
 * import { pb, encodeFrame } from '@meshvirt/proto'
 * const bytes = pb.HostAdvert.encode({ hostId, incarnation: 1, seq: 7 }).finish()
 * const advert = pb.HostAdvert.decode(bytes) // uint64 fields are plain numbers
 * ```
 */
export { pb } from './codec.js'
export type { meshvirt } from './codec.js'
export * from './framing.js'
