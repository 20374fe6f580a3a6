import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { followSerialLog, waitForSerialLine } from '../src/index.js'

let dir: string
beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'mv-serial-')) })
afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

describe('serial log', () => {
  it('follows history then new lines, joining lines split across writes', async () => {
    const log = join(dir, 'serial.log')
    await writeFile(log, 'boot 1\r\nMESHVIRT-READY\nhalf')
    const ac = new AbortController()
    const seen: string[] = []
    const following = (async () => { for await (const line of followSerialLog(log, { signal: ac.signal, pollMs: 5 })) seen.push(line) })()
    await appendFile(log, ' line\nMESHVIRT-COUNTER 1\n')
    await waitForSerialLine(log, 'MESHVIRT-COUNTER 1', { timeoutMs: 2000, pollMs: 5 })
    while (seen.length < 4) await new Promise((resolve) => setTimeout(resolve, 5))
    ac.abort()
    await following
    expect(seen).toEqual(['boot 1', 'MESHVIRT-READY', 'half line', 'MESHVIRT-COUNTER 1'])
  })

  it('waits from the end for new output only, and times out with a typed error', async () => {
    const log = join(dir, 'serial.log')
    await writeFile(log, 'MESHVIRT-READY\n')
    await expect(waitForSerialLine(log, /READY/, { from: 'end', timeoutMs: 100, pollMs: 5 })).rejects.toMatchObject({ code: 'ERR_WAIT_TIMEOUT' })
    const waiting = waitForSerialLine(log, /READY/, { from: 'end', timeoutMs: 2000, pollMs: 5 })
    await appendFile(log, 'second boot MESHVIRT-READY\n')
    expect(await waiting).toBe('second boot MESHVIRT-READY')
  })

  it('waits for a log that does not exist yet', async () => {
    const log = join(dir, 'later.log')
    const waiting = waitForSerialLine(log, 'hello', { timeoutMs: 2000, pollMs: 5 })
    await writeFile(log, 'hello\n')
    expect(await waiting).toBe('hello')
  })
})
