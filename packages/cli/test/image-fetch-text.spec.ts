import { describe, expect, it } from 'vitest'
import { vmView } from '@meshvirt/agent'
import { imageFetchText } from '../src/commands/vm.js'

const MIB = 2 ** 20
const at = (fetch: object | undefined): ReturnType<typeof vmView> => vmView({ summary: { id: 'vm-0000000000000001', name: 'web-1' }, ...(fetch !== undefined ? { imageFetch: fetch } : {}) })

describe('a VM\'s image fetch as `vm create` and `vm show` print it', () => {
  it.each<[string, object | undefined, string]>([
    ['no fetch', undefined, ''],
    ['asked, no manifest yet', { ref: 'debian-12:latest', digest: 'sha256:' + 'ab'.repeat(32), startedAtMs: 10_000 }, 'image debian-12:latest starting after 2.0 s'],
    ['part-way', { ref: 'debian-12:latest', digest: 'sha256:ab', chunksHeld: 460, chunkCount: 1024, bytesHeld: 460 * MIB, sizeBytes: 1024 * MIB, startedAtMs: 6_000 }, 'image debian-12:latest 44% (460 MiB of 1 GiB) after 6.0 s'],
    ['no name: the digest', { digest: 'sha256:' + 'cd'.repeat(32), chunksHeld: 1, chunkCount: 4, bytesHeld: MIB, sizeBytes: 4 * MIB }, 'image sha256:cdcdcdcdcdcd 25% (1 MiB of 4 MiB)']
  ])('%s', (_what, fetch, text) => {
    expect(imageFetchText(at(fetch), 12_000)).toBe(text)
  })
})
