import { createHash } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { writeSeedIso, type SeedSpec } from '../src/index.js'

const seed: SeedSpec = {
  files: [
    { name: 'meta-data', content: 'instance-id: "vm-0123456789abcdef"\nlocal-hostname: "web"\n' },
    { name: 'user-data', content: '#cloud-config\n{}\n' }
  ]
}
const sha256 = async (file: string): Promise<string> => createHash('sha256').update(await readFile(file)).digest('hex')

describe('writeSeedIso (real xorriso)', () => {
  const dirs: string[] = []
  afterEach(async () => { for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true }) })
  const dir = async (): Promise<string> => { const d = await mkdtemp(join(tmpdir(), 'seed-iso-')); dirs.push(d); return d }

  it('writes byte-identical ISOs for the same files, in other dirs, seconds apart', async () => {
    const a = await writeSeedIso({ xorriso: 'xorriso', dir: await dir(), seed })
    await new Promise((resolve) => setTimeout(resolve, 1100))
    const b = await writeSeedIso({ xorriso: 'xorriso', dir: await dir(), seed: structuredClone(seed) })
    expect(await sha256(a)).toBe(await sha256(b))
    const other = await writeSeedIso({ xorriso: 'xorriso', dir: await dir(), seed: { files: [{ name: 'meta-data', content: 'instance-id: "vm-other"\n' }] } })
    expect(await sha256(other)).not.toBe(await sha256(a))
  })

  it('labels the volume cidata (NoCloud finds it by that label)', async () => {
    const iso = await readFile(await writeSeedIso({ xorriso: 'xorriso', dir: await dir(), seed }))
    // The primary volume descriptor is sector 16; its volume id starts at byte 40.
    expect(iso.subarray(16 * 2048 + 40, 16 * 2048 + 46).toString('ascii')).toBe('cidata')
  })

  it('names the Debian package when xorriso is missing', async () => {
    await expect(writeSeedIso({ xorriso: '/nonexistent/xorriso', dir: await dir(), seed })).rejects.toMatchObject({ code: 'ERR_SEED_TOOL_MISSING', message: expect.stringMatching(/install the Debian package xorriso/) })
  })
})
