import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { readGuestIo } from '../src/qemu/guest-io.js'

describe('readGuestIo', () => {
  it('reads the QEMU process\'s storage I/O and its taps\' counters, from the guest\'s side', async () => {
    const root = await mkdtemp(join(tmpdir(), 'mv-io-'))
    try {
      await mkdir(join(root, 'proc/42'), { recursive: true })
      await writeFile(join(root, 'proc/42/io'), 'rchar: 9\nwchar: 9\nsyscr: 1\nsyscw: 1\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: 0\n')
      for (const [tap, rx, tx] of [['mvt1', 100, 700], ['mvt2', 1, 3]] as const) {
        await mkdir(join(root, `sys/class/net/${tap}/statistics`), { recursive: true })
        await writeFile(join(root, `sys/class/net/${tap}/statistics/rx_bytes`), `${rx}\n`)
        await writeFile(join(root, `sys/class/net/${tap}/statistics/tx_bytes`), `${tx}\n`)
      }
      expect(await readGuestIo(42, ['mvt1', 'mvt2'], root)).toEqual({ diskReadBytes: 4096, diskWriteBytes: 8192, netRxBytes: 703, netTxBytes: 101 })
      expect(await readGuestIo(43, [], root)).toBeUndefined()
    } finally {
      await rm(root, { recursive: true, force: true })
    }
  })
})
