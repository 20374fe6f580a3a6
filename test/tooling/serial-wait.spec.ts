import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { waitForSerial } from '@meshvirt/testkit'

describe('waitForSerial', () => {
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'mv-serial-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('a line caught half-written is read again whole (QEMU writes the log a character at a time)', async () => {
    const log = join(dir, 'serial.log')
    await writeFile(log, 'boot\r\nMESHVIRT-DISK 42')
    setTimeout(() => { void appendFile(log, '42\r\nMESHVIRT-READY\r\n') }, 60)
    const found = await waitForSerial(log, /MESHVIRT-DISK (\d+|none)/, 5_000)
    expect(found[1]).toBe('4242')
  })

  it('a prompt that waits for input at the end of the log counts once the log stops there', async () => {
    const log = join(dir, 'serial.log')
    await writeFile(log, 'MESHVIRT-READY\r\nguest# ')
    const t0 = Date.now()
    expect((await waitForSerial(log, /guest# /, 5_000))[0]).toBe('guest# ')
    expect(Date.now() - t0).toBeLessThan(2_000)
  })
})
