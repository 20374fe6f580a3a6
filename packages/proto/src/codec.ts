import $protobuf from 'protobufjs/minimal.js'
import * as generated from '../gen/meshvirt.js'

// uint64 fields decode to plain numbers: without Long, protobufjs' Reader returns numbers
// (exact up to 2^53, far above any byte size or millisecond timestamp we carry).
// `configure()` rebinds the Reader/Writer fast paths after the change.
;($protobuf.util as { Long: unknown }).Long = undefined
$protobuf.configure()

/** The generated message classes of the `meshvirt.v1` package. */
export const pb = generated.meshvirt.v1
// eslint-disable-next-line @typescript-eslint/no-namespace
export type { meshvirt } from '../gen/meshvirt.js'
