/**
 * The lease history `vm show` prints is kept in the state store: across agent restarts (a reopened
 * store), the newest LEASE_HISTORY_KEPT entries per VM, oldest first, and gone with the VM.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { LEASE_HISTORY_KEPT, LeaseRecords } from '../src/store/lease-records.js'
import { StateStore } from '../src/store/state-store.js'

let dir: string
beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'mv-lease-history-')) })
afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

const entry = (i: number, type = 'lease-acquired'): { type: string, atMs: number, epoch: number, detail: string, hostId: string } =>
  ({ type, atMs: 1_000 + i, epoch: 1 + Math.floor(i / 10), detail: `entry ${i}`, hostId: 'host-a' })

describe('lease history in the state store', () => {
  it('survives a reopen of the store, oldest first, per VM', () => {
    const store = StateStore.open(dir)
    const records = new LeaseRecords(store)
    records.appendHistory('vm-1', entry(0, 'fenced'))
    records.appendHistory('vm-2', entry(1, 'elected'))
    records.appendHistory('vm-1', entry(2, 'resumed'))
    store.close()

    const again = new LeaseRecords(StateStore.open(dir))
    expect(again.history('vm-1')).toEqual([entry(0, 'fenced'), entry(2, 'resumed')])
    expect(again.history('vm-2')).toEqual([entry(1, 'elected')])
    expect(again.history('vm-3')).toEqual([])
  })

  it('keeps the newest entries of a VM and forgets them with the VM', () => {
    const store = StateStore.open(dir)
    const records = new LeaseRecords(store)
    for (let i = 0; i < LEASE_HISTORY_KEPT + 7; i++) records.appendHistory('vm-1', entry(i))
    records.appendHistory('vm-2', entry(99))
    const kept = records.history('vm-1')
    expect(kept).toHaveLength(LEASE_HISTORY_KEPT)
    expect(kept[0]).toEqual(entry(7))
    expect(kept.at(-1)).toEqual(entry(LEASE_HISTORY_KEPT + 6))

    records.forgetHistory('vm-1')
    expect(records.history('vm-1')).toEqual([])
    expect(records.history('vm-2')).toEqual([entry(99)])
    store.close()
  })
})
