import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { MigrationFailedError, QmpError } from '../src/errors.js'
import { withQemuLog } from '../src/qemu/qemu-launcher.js'

describe('an error from a QEMU that went away says what its log said last', () => {
  let dir = ''
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'mv-qemu-log-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('appends the end of the log when the monitor closed under the call', async () => {
    const log = join(dir, 'qemu.log')
    await writeFile(log, 'early noise\nqemu-system-x86_64: ../migration/ram.c:123: assertion failed\n')
    const closed = new QmpError('QMP connection closed before the reply (QEMU exited?)')
    const wrapped = new MigrationFailedError('migration of VM twin failed: QMP connection closed', { cause: closed })
    const out = await withQemuLog(wrapped, log, 'the source') as Error
    expect(out).toBe(wrapped)
    expect(out.message).toBe("migration of VM twin failed: QMP connection closed (the source QEMU's log ends: early noise\nqemu-system-x86_64: ../migration/ram.c:123: assertion failed)")
    expect((await withQemuLog(new QmpError('QMP connection closed'), log, 'the destination') as Error).message).toContain("(the destination QEMU's log ends: early noise")
  })

  it('leaves other errors, and an empty or missing log, as they were', async () => {
    const log = join(dir, 'qemu.log')
    const other = new MigrationFailedError('migration of VM twin failed: cancelled')
    expect((await withQemuLog(other, log, 'the source') as Error).message).toBe('migration of VM twin failed: cancelled')
    const closed = new MigrationFailedError('x', { cause: new QmpError('QMP connection closed before the reply') })
    expect((await withQemuLog(closed, log, 'the source') as Error).message).toBe('x')
    await writeFile(log, '')
    expect((await withQemuLog(closed, log, 'the source') as Error).message).toBe('x')
    expect(await withQemuLog('not an error', log, 'the source')).toBe('not an error')
  })
})
