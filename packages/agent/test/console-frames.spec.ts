import { createServer, connect, type Server, type Socket } from 'node:net'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { encodeFrame, pb } from '@meshvirt/proto'
import { readAnswer, writeAnswer } from '../src/console/console-frames.js'

describe('console frames: the answer, then raw bytes', () => {
  let dir: string
  let server: Server
  let peer: Promise<Socket>
  let client: Socket

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mv-cf-'))
    const path = join(dir, 's')
    let accepted!: (s: Socket) => void
    peer = new Promise((resolve) => { accepted = resolve })
    server = createServer((s) => { accepted(s) })
    await new Promise<void>((resolve) => server.listen(path, resolve))
    client = connect(path)
    await new Promise((resolve) => client.once('connect', resolve))
  })

  afterEach(async () => {
    client.destroy()
    ;(await peer).destroy()
    await new Promise((resolve) => server.close(resolve))
    await rm(dir, { recursive: true, force: true })
  })

  it('keeps the console bytes that arrive in the same chunk as the answer', async () => {
    const frame = encodeFrame(pb.ControlResponse.encode({ consoleAttached: { vmId: 'vm-1', vmName: 'a', hostId: 'h' } }).finish())
    ;(await peer).write(Buffer.concat([frame, Buffer.from('guest# ')]))
    const res = await readAnswer(client, 2000)
    expect(res.consoleAttached?.vmName).toBe('a')
    const rest = await new Promise<string>((resolve) => { client.once('data', (d: Buffer) => { resolve(d.toString()) }); client.resume() })
    expect(rest).toBe('guest# ')
  })

  it('throws an error answer with its code, and the sender closes', async () => {
    writeAnswer(await peer, { error: { code: 'CONSOLE_BUSY', message: 'another console is attached' } })
    await expect(readAnswer(client, 2000)).rejects.toMatchObject({ code: 'CONSOLE_BUSY', message: 'another console is attached' })
  })

  it('gives up after its bound when nothing answers', async () => {
    await expect(readAnswer(client, 100)).rejects.toMatchObject({ code: 'TIMEOUT' })
  })
})
