import { pb } from '@meshvirt/proto'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { HostRefusals } from '../src/negotiate/host-refusals.js'
import { admitNewVm, CAN_START_TIMEOUT_MS } from '../src/negotiate/reserve-admission.js'
import { vmSpecFromWire } from '../src/vm/vm-spec-codec.js'
import { simVmSpec } from '@meshvirt/testkit'

const spec = vmSpecFromWire(simVmSpec('busy-1'))
const R = pb.RefuseReason

describe('a host too busy to check a VM at Reserve', () => {
  afterEach(() => { vi.useRealTimers() })

  it('a driver check that does not answer in time is "busy", not a refusal of the spec', async () => {
    vi.useFakeTimers()
    const admitted = admitNewVm(spec, async () => await new Promise<void>(() => {}))
    await vi.advanceTimersByTimeAsync(CAN_START_TIMEOUT_MS + 1)
    expect(await admitted).toEqual({ ok: false, busy: true, message: `this host is too busy to check the spec: its driver did not answer within ${CAN_START_TIMEOUT_MS} ms` })
  })

  it('a driver that says no is a refusal of the spec, as before', async () => {
    expect(await admitNewVm(spec, async () => { throw new Error('4 vCPUs exceed this host\'s 2 CPUs') }))
      .toEqual({ ok: false, message: 'this host\'s driver cannot start it: 4 vCPUs exceed this host\'s 2 CPUs' })
  })

  it('a placement that failed only on busy hosts says so, and to retry: not "change the spec", not "no capacity"', () => {
    const r = new HostRefusals()
    r.note('h1', R.REFUSE_REASON_OVERLOADED, 'this host is too busy to check the spec: its driver did not answer within 5000 ms')
    r.note('h2', R.REFUSE_REASON_OVERLOADED, 'this host is too busy to check the spec: its driver did not answer within 5000 ms')
    expect(r.anyBusy()).toBe(true)
    // Busy hosts are asked again later, not excluded like a driver's refusal.
    expect(r.exclude({ exclude: [] } as never)).toEqual({ exclude: [] })
    const err = r.error('web', 'gave up', 6)
    expect(err).toMatchObject({ code: 'RESOURCE_EXHAUSTED', details: { busy: '2', attempts: '6' } })
    expect(err.message).toMatch(/^VM web not placed: 2 host\(s\) too busy to answer \(this host is too busy.*\); nothing was created: retry later$/)
  })

  it('a busy host that answers later is no longer busy; a driver\'s refusal still names the spec', () => {
    const r = new HostRefusals()
    r.note('h1', R.REFUSE_REASON_OVERLOADED, 'busy')
    r.note('h1', R.REFUSE_REASON_INSUFFICIENT_MEMORY, 'short of memory')
    expect(r.anyBusy()).toBe(false)
    expect(r.error('web', 'no host has 4 GiB free', 3)).toMatchObject({ code: 'NO_CAPACITY', message: 'no host has 4 GiB free' })
    r.note('h2', R.REFUSE_REASON_OVERLOADED, 'busy')
    r.note('h3', R.REFUSE_REASON_DRIVER, 'this host\'s driver cannot start it: no such image')
    const err = r.error('web', 'gave up', 3)
    expect(err).toMatchObject({ code: 'DRIVER_REFUSED' })
    expect(err.message).toBe('no host can start VM web: 1 refused it at Reserve (this host\'s driver cannot start it: no such image); 1 more too busy to answer; change the spec')
  })
})
