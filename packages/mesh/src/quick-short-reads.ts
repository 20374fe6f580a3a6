/**
 * Length-prefixed decoding without building an exception per socket read.
 *
 * @libp2p/utils' LengthPrefixedDecoder finds out that its buffer holds no whole length prefix by
 * calling the length decoder and catching the RangeError it throws. noise decodes every frame this
 * way, so nearly every read (they mostly end on a frame boundary: the buffer is then empty) built a
 * new Error with its stack trace. Profiled on 11 idle agents, noise's 2-byte decoder was 3.9 % of all
 * CPU, the largest single function after the garbage collector and socket writes; a 900-byte frame
 * per read decoded in 4.3–4.8 µs, 0.6–0.8 µs without the throw's construction (this 2-core box).
 *
 * Installed on import of `@meshvirt/mesh` (mesh-node.ts imports it): each decoder's length decoder
 * is wrapped, on its first use, so that a buffer shorter than any prefix can be (empty, or below the
 * fixed width a decoder declares as `bytes`, as noise's does) throws one RangeError made once. The
 * decoder's catch treats it as before: wait for more bytes. Anything longer reaches the decoder
 * itself. `quickShortReads` is false if a release of @libp2p/utils no longer has the method.
 */
import { LengthPrefixedDecoder } from '@libp2p/utils'

/** What the library's length decoders take (a Uint8Array or a Uint8ArrayList). */
interface Bytes { byteLength: number }
export type LengthDecoder = ((data: Bytes) => number) & { bytes?: number }

/** Thrown for every short buffer: made once, so a short read costs no stack trace. */
export const SHORT_PREFIX = new RangeError('length prefix incomplete: waiting for more bytes')

/** `decode`, answering a buffer too short for any prefix without calling it. */
export function shortReadsQuick (decode: LengthDecoder): LengthDecoder {
  const least = typeof decode.bytes === 'number' && decode.bytes > 0 ? decode.bytes : 1
  const quick: LengthDecoder = (data) => {
    if (data.byteLength < least) throw SHORT_PREFIX
    return decode(data)
  }
  if (decode.bytes !== undefined) quick.bytes = decode.bytes
  return quick
}

interface DecoderFields { lengthDecoder?: unknown, __meshvirtQuick?: true }
type Proto = { decode: (this: DecoderFields, ...args: unknown[]) => unknown, __meshvirtQuickShortReads?: true }

function install (): boolean {
  const proto = LengthPrefixedDecoder.prototype as unknown as Proto
  if (proto.__meshvirtQuickShortReads === true) return true
  const original = proto.decode
  if (typeof original !== 'function') return false
  proto.decode = function (this: DecoderFields, ...args: unknown[]) {
    if (this.__meshvirtQuick !== true && typeof this.lengthDecoder === 'function') {
      this.lengthDecoder = shortReadsQuick(this.lengthDecoder as LengthDecoder)
      this.__meshvirtQuick = true
    }
    return original.apply(this, args)
  }
  proto.__meshvirtQuickShortReads = true
  return true
}

/** Whether length-prefixed decoders answer short reads without a new exception (false: the library's own behaviour). */
export const quickShortReads = install()
