/**
 * The one control frame each side of a console connection reads before the raw bytes start, over a
 * node socket (the CLI's control connection, QEMU's serial socket needs none).
 */
import type { Socket } from 'node:net'
import { FrameDecoder, encodeFrame, pb, type meshvirt } from '@meshvirt/proto'
import { ControlError } from '../control/errors.js'

/** An attach request or its answer is small; anything bigger is not ours. */
export const MAX_CONSOLE_FRAME_BYTES = 64 * 1024

/** Writes the answer to an attach request: ConsoleAttached, or the error (and then closes). */
export function writeAnswer (socket: Socket, answer: meshvirt.v1.IControlResponse): void {
  if (socket.destroyed) return
  socket.write(encodeFrame(pb.ControlResponse.encode(answer).finish()))
  if (answer.error != null) socket.end()
}

/**
 * Reads one ControlResponse frame from `socket` and leaves the socket paused, with nothing of what
 * follows the frame lost (it is unshifted back). A response carrying an Error is thrown as such.
 */
export async function readAnswer (socket: Socket, timeoutMs: number): Promise<meshvirt.v1.ControlResponse> {
  return await new Promise((resolve, reject) => {
    const decoder = new FrameDecoder(MAX_CONSOLE_FRAME_BYTES)
    let buffered = Buffer.alloc(0)
    const timer = setTimeout(() => { finish(new ControlError('TIMEOUT', `the agent did not answer the console request within ${timeoutMs} ms`)) }, timeoutMs)
    const finish = (result: Error | meshvirt.v1.ControlResponse): void => {
      clearTimeout(timer)
      socket.off('data', onData)
      socket.off('close', onClose)
      socket.pause()
      if (result instanceof Error) reject(result)
      else resolve(result)
    }
    const onClose = (): void => { finish(new ControlError('UNAVAILABLE', 'the agent closed the console connection without answering')) }
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk])
      let frames: Uint8Array[]
      try {
        frames = decoder.push(chunk)
      } catch (err) {
        finish(err as Error)
        return
      }
      const [frame] = frames
      if (frame === undefined) return
      // What came after the answer is console output: give it back to the socket's next reader.
      const rest = buffered.subarray(varintLength(frame.length) + frame.length)
      let res: meshvirt.v1.ControlResponse
      try {
        res = pb.ControlResponse.decode(frame)
      } catch (err) {
        finish(err as Error)
        return
      }
      finish(res.error != null ? ControlError.fromWire(res.error) : res)
      if (rest.length > 0) socket.unshift(rest)
    }
    socket.on('data', onData)
    socket.on('close', onClose)
    socket.resume()
  })
}

function varintLength (n: number): number {
  let bytes = 1
  while (n >= 0x80) { n = Math.floor(n / 0x80); bytes++ }
  return bytes
}
