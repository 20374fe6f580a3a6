import type { Socket } from 'node:net'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { resolveMigrationParams } from '../src/migration/migration-params.js'
import { OutgoingMigration } from '../src/migration/qemu-outgoing.js'
import { scriptedQmp, type QmpCommand } from './fake-qmp.js'

/**
 * What a failed migration says about the source, against a scripted QMP: the message must tell
 * where the guest is, which the roll-back asks rather than assumes (a source QEMU can die mid-way).
 */
describe('a failed outgoing migration reports where the guest is left', () => {
  const qmp = scriptedQmp('mv-outgoing-')

  /** A source QEMU whose guest runs, whose migration fails; `after` answers the rest. */
  async function migrateAgainst (after: (cmd: QmpCommand, send: (msg: unknown) => void, socket: Socket) => boolean): Promise<Error> {
    const client = await qmp.connect((cmd, send, socket) => {
      if (after(cmd, send, socket)) return
      if (cmd.execute === 'query-status') send({ return: { status: 'running', running: true }, id: cmd.id })
      else if (cmd.execute === 'query-migrate') {
        send({ event: 'MIGRATION', data: { status: 'failed' }, timestamp: { seconds: Math.floor(Date.now() / 1000), microseconds: 0 } })
        send({ return: { status: 'failed', 'error-desc': 'connection reset' }, id: cmd.id })
      } else send({ return: {}, id: cmd.id })
    })
    const params = resolveMigrationParams({ progressIntervalMs: 10, timeoutMs: 5_000 })
    const run = new OutgoingMigration(client, { id: 'vm-1', migrationSocket: join(qmp.dir(), 'migrate.sock'), disks: [], params }).run()
    return await run.then(() => { throw new Error('the migration succeeded') }, (err: Error) => err)
  }

  it('the guest resumed: it still runs on the source', async () => {
    const err = await migrateAgainst(() => false)
    expect(err).toMatchObject({ code: 'ERR_MIGRATION_FAILED' })
    expect(err.message).toMatch(/migration of VM vm-1 failed: connection reset; the guest still runs on the source$/)
  })

  it('the source QEMU exited mid-way: the message says the guest runs nowhere, not that it runs on', async () => {
    const err = await migrateAgainst((cmd, _send, socket) => {
      if (cmd.execute !== 'query-migrate') return false
      socket.destroy()
      return true
    })
    expect(err).toMatchObject({ code: 'ERR_MIGRATION_FAILED' })
    expect(err.message).toContain('the source QEMU exited during the attempt: the guest no longer runs anywhere')
    expect(err.message).not.toContain('still runs')
  })

  it('a guest that will not resume is reported paused, not running', async () => {
    let failed = false
    const err = await migrateAgainst((cmd, send) => {
      if (cmd.execute === 'query-migrate') failed = true
      if (cmd.execute !== 'query-status' || !failed) return false
      send({ return: { status: 'paused', running: false }, id: cmd.id })
      return true
    })
    expect(err.message).toMatch(/connection reset; the guest is paused on the source and did not resume$/)
  })
})
