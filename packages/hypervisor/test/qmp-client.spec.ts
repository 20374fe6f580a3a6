import type { Server } from 'node:net'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { QmpClient } from '../src/index.js'
import { connectQmp } from '../src/qemu/qemu-launcher.js'
import { fakeQmp } from './fake-qmp.js'

describe('QmpClient', () => {
  let dir: string
  let server: Server | undefined
  let client: QmpClient | undefined
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'mv-qmp-')) })
  afterEach(async () => {
    client?.close()
    await new Promise((resolve) => server !== undefined ? server.close(resolve) : resolve(undefined))
    await rm(dir, { recursive: true, force: true })
  })

  it('negotiates capabilities, matches replies by id (out of order) and surfaces errors', async () => {
    const held: Array<() => void> = []
    server = await fakeQmp(join(dir, 's'), (cmd, socket) => {
      const send = (msg: unknown): void => { socket.write(JSON.stringify(msg) + '\n') }
      if (cmd.execute === 'slow') held.push(() => { send({ return: 'slow', id: cmd.id }) })
      else if (cmd.execute === 'bad') send({ error: { class: 'GenericError', desc: 'nope' }, id: cmd.id })
      else { send({ return: cmd.execute, id: cmd.id }); held.forEach((f) => { f() }) }
    })
    client = await QmpClient.connect(join(dir, 's'))
    expect(client.greeting).toHaveProperty('QMP')
    const slow = client.execute('slow')
    expect(await client.execute('fast')).toBe('fast')
    expect(await slow).toBe('slow')
    await expect(client.execute('bad')).rejects.toMatchObject({ code: 'ERR_QMP', message: expect.stringContaining('nope') })
  })

  it('times out a command and honours an AbortSignal', async () => {
    server = await fakeQmp(join(dir, 's'), () => { /* never answers */ })
    client = await QmpClient.connect(join(dir, 's'))
    await expect(client.execute('query-status', undefined, { timeoutMs: 50 })).rejects.toMatchObject({ code: 'ERR_QMP_TIMEOUT' })
    const ac = new AbortController()
    const pending = client.execute('query-status', undefined, { signal: ac.signal })
    ac.abort()
    await expect(pending).rejects.toMatchObject({ code: 'ERR_ABORTED' })
  })

  it('delivers events and fails pending commands when the connection drops', async () => {
    server = await fakeQmp(join(dir, 's'), (cmd, socket) => {
      socket.write(JSON.stringify({ event: 'POWERDOWN', timestamp: { seconds: 1, microseconds: 0 } }) + '\n')
      if (cmd.execute === 'die') socket.destroy()
    })
    client = await QmpClient.connect(join(dir, 's'))
    const event = client.waitForEvent('POWERDOWN', { timeoutMs: 1000 })
    const dying = client.execute('die')
    expect((await event).event).toBe('POWERDOWN')
    await expect(dying).rejects.toMatchObject({ code: 'ERR_QMP' })
    expect(client.isClosed).toBe(true)
    await expect(client.execute('x')).rejects.toMatchObject({ code: 'ERR_QMP' })
  })

  it('says what the QEMU logged last when its monitor closes under a call, and nothing when we closed it', async () => {
    const paths = { qmpSocket: join(dir, 's'), qemuLog: join(dir, 'qemu.log') }
    await writeFile(paths.qemuLog, 'early noise\nqemu-system-x86_64: ../migration/ram.c:123: assertion failed\n')
    server = await fakeQmp(paths.qmpSocket, (cmd, socket) => { if (cmd.execute === 'die') socket.destroy() })
    client = await connectQmp(paths)
    const waiting = client.waitForEvent('MIGRATION', { timeoutMs: 5000 })
    const dying = client.execute('die')
    const said = '(QEMU exited?) (its log ends: early noise\nqemu-system-x86_64: ../migration/ram.c:123: assertion failed)'
    await expect(dying).rejects.toMatchObject({ code: 'ERR_QMP', message: `QMP connection closed before the reply ${said}` })
    await expect(waiting).rejects.toThrow('QMP connection closed while waiting for MIGRATION (its log ends: early noise')
    await expect(client.execute('x')).rejects.toThrow('QMP connection closed; cannot run x (its log ends: early noise')

    // Closed by us: not a QEMU that went, so no log.
    const ours = await connectQmp(paths)
    const pending = ours.execute('hang')
    ours.close()
    await expect(pending).rejects.toMatchObject({ message: 'QMP connection closed before the reply (QEMU exited?)' })
  })

  it('leaves the errors as they were when the log is empty or missing', async () => {
    const paths = { qmpSocket: join(dir, 's'), qemuLog: join(dir, 'absent.log') }
    server = await fakeQmp(paths.qmpSocket, (cmd, socket) => { if (cmd.execute === 'die') socket.destroy() })
    client = await connectQmp(paths)
    await expect(client.execute('die')).rejects.toMatchObject({ message: 'QMP connection closed before the reply (QEMU exited?)' })
    await writeFile(paths.qemuLog, '')
    client = await connectQmp(paths)
    await expect(client.execute('die')).rejects.toMatchObject({ message: 'QMP connection closed before the reply (QEMU exited?)' })
  })

  it('reports a missing socket as a QMP error', async () => {
    await expect(QmpClient.connect(join(dir, 'absent'))).rejects.toMatchObject({ code: 'ERR_QMP' })
  })
})
