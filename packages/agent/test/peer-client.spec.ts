import { pb } from '@meshvirt/proto'
import { describe, expect, it } from 'vitest'
import { PeerClient } from '../src/negotiate/peer-client.js'

/** A mesh whose requests fail with the given errors first, then answer with `answer`. */
function meshFailing (failures: Error[], answer: Uint8Array): { mesh: ConstructorParameters<typeof PeerClient>[0], asked: () => number } {
  let asked = 0
  return {
    asked: () => asked,
    mesh: {
      hostId: 'self',
      serves: async () => true,
      request: async () => {
        const failure = failures[asked++]
        if (failure !== undefined) throw failure
        return answer
      }
    }
  }
}

const named = (name: string, message: string): Error => Object.assign(new Error(message), { name })
const vmAnswer = pb.ControlResponse.encode({ vm: { spec: { name: 'web-1' } } }).finish()

describe('PeerClient.control: a read-only request whose stream broke is asked once more', () => {
  it('an inspect whose stream ended early is asked again and answered', async () => {
    const { mesh, asked } = meshFailing([named('RequestFailedError', 'Unexpected EOF - stream closed while reading 0/1 bytes')], vmAnswer)
    const res = await new PeerClient(mesh).control('peer-2', { hops: 1, inspectVm: { vm: { id: 'v1' } } })
    expect(res.vm?.spec?.name).toBe('web-1')
    expect(asked()).toBe(2)
  })

  it('only once: a second broken stream is the answer', async () => {
    const eof = named('RequestFailedError', 'Unexpected EOF')
    const { mesh, asked } = meshFailing([eof, eof], vmAnswer)
    await expect(new PeerClient(mesh).control('peer-2', { listVms: { localOnly: true } })).rejects.toMatchObject({ code: 'UNAVAILABLE' })
    expect(asked()).toBe(2)
  })

  it('a request that changes something is never asked twice', async () => {
    const { mesh, asked } = meshFailing([named('RequestFailedError', 'Unexpected EOF')], vmAnswer)
    await expect(new PeerClient(mesh).control('peer-2', { hops: 1, startVm: { vm: { id: 'v1' } } })).rejects.toMatchObject({ code: 'UNAVAILABLE' })
    expect(asked()).toBe(1)
  })

  it('a time-out is not a broken stream: not asked again', async () => {
    const { mesh, asked } = meshFailing([named('RequestTimeoutError', 'no answer within 100 ms')], vmAnswer)
    await expect(new PeerClient(mesh).control('peer-2', { inspectVm: { vm: { id: 'v1' } } }, 100)).rejects.toMatchObject({ code: 'UNAVAILABLE' })
    expect(asked()).toBe(1)
  })
})
