import { describe, expect, it } from 'vitest'
import { pb, type meshvirt } from '@meshvirt/proto'
import { parseControlRequest, refMatcher, type ControlAction, type VmAction } from '../src/control/control-action.js'
import { runVmAction, VM_ACTIONS, type VmActionContext } from '../src/control/vm-actions.js'
import { silentLogger } from '../src/log/logger.js'
import { VM_RUN_STATES, type VmRow, type VmRunState } from '../src/store/state-store.js'
import { vmSpecFromWire } from '../src/vm/vm-spec-codec.js'

const req = (body: meshvirt.v1.IControlRequest): meshvirt.v1.ControlRequest => pb.ControlRequest.decode(pb.ControlRequest.encode(body).finish())
const byName = { id: '', name: 'web' }
const byId = { id: 'vm-1', name: '' }

describe('parse: every control request becomes one validated action', () => {
  it.each<[string, meshvirt.v1.IControlRequest, ControlAction]>([
    ['createVm (the idempotency key)', { idempotencyKey: 'k1', createVm: { spec: { name: 'web' } } }, { kind: 'create', spec: expect.objectContaining({ name: 'web' }) as never, idempotencyKey: 'k1' }],
    ['createVm (the request id when no key)', { requestId: 'r1', createVm: { spec: {} } }, { kind: 'create', spec: expect.anything() as never, idempotencyKey: 'r1' }],
    ['startVm', { startVm: { vm: { name: 'web' } } }, { kind: 'vm', vm: byName, action: { op: 'start' } }],
    ['stopVm', { stopVm: { vm: { id: 'vm-1' }, force: true } }, { kind: 'vm', vm: byId, action: { op: 'stop', force: true } }],
    ['deleteVm', { deleteVm: { vm: { name: 'web' } } }, { kind: 'vm', vm: byName, action: { op: 'delete', force: false } }],
    ['deleteVm --force', { deleteVm: { vm: { name: 'web' }, force: true } }, { kind: 'vm', vm: byName, action: { op: 'delete', force: true } }],
    ['inspectVm', { inspectVm: { vm: { id: 'vm-1', name: 'web' } } }, { kind: 'vm', vm: { id: 'vm-1', name: 'web' }, action: { op: 'inspect' } }],
    ['readConsole', { readConsole: { vm: { name: 'web' }, offset: 4096, maxBytes: 512 } }, { kind: 'vm', vm: byName, action: { op: 'readConsole', offset: 4096, maxBytes: 512 } }],
    ['migrateVm', { migrateVm: { vm: { name: 'web' }, toHost: 'h2', params: { timeoutMs: 1000 } } }, { kind: 'vm', vm: byName, action: { op: 'migrate', toHost: 'h2', params: expect.objectContaining({ timeoutMs: 1000 }) as never } }],
    ['migrateVm (placement chooses)', { migrateVm: { vm: { name: 'web' } } }, { kind: 'vm', vm: byName, action: { op: 'migrate', toHost: '', params: null } }],
    ['replicateVm', { replicateVm: { vm: { name: 'web' }, replicas: 2, rpoMs: 5000, spreadBy: 'rack' } }, { kind: 'vm', vm: byName, action: { op: 'replicate', replicas: 2, rpoMs: 5000, spreadBy: 'rack' } }],
    ['failoverVm', { failoverVm: { vm: { name: 'web' }, toHost: 'h3' } }, { kind: 'failover', vm: byName, toHost: 'h3' }],
    ['drainHost', { drainHost: { host: 'h1', concurrency: 3 } }, { kind: 'drain', host: 'h1', undrain: false, concurrency: 3, params: null }],
    ['drainHost --undrain', { drainHost: { host: 'h1', undrain: true } }, { kind: 'drain', host: 'h1', undrain: true, concurrency: 0, params: null }],
    ['listVms', { listVms: {} }, { kind: 'listVms', localOnly: false }],
    ['listVms (this host only)', { listVms: { localOnly: true } }, { kind: 'listVms', localOnly: true }],
    ['listHosts', { listHosts: {} }, { kind: 'listHosts' }],
    ['a network command (answered by the networks feature)', { createNetwork: { name: 'front', subnet: '10.0.0.0/24' } }, { kind: 'other', body: 'createNetwork' }],
    ['listEvents (answered by monitoring)', { listEvents: {} }, { kind: 'other', body: 'listEvents' }]
  ])('%s', (_, body, action) => {
    expect(parseControlRequest(req(body))).toEqual(action)
  })

  it.each<[string, meshvirt.v1.IControlRequest, string]>([
    ['an empty request', {}, 'empty control request: set one operation'],
    ['a create without a key', { createVm: { spec: {} } }, 'create needs an idempotency key'],
    ['a VM named by neither id nor name', { startVm: { vm: {} } }, 'name a VM by id or name'],
    ['a VM not named at all', { stopVm: {} }, 'name a VM by id or name'],
    ['a migration of no VM', { migrateVm: { toHost: 'h2' } }, 'name a VM by id or name'],
    ['a failover of no VM', { failoverVm: {} }, 'name a VM by id or name'],
    ['a drain of no host', { drainHost: {} }, 'name the host to drain']
  ])('refuses %s (INVALID_ARGUMENT)', (_, body, message) => {
    expect(() => parseControlRequest(req(body))).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringContaining(message) as unknown }))
  })

  it('a reference by id wins over its name', () => {
    const matches = refMatcher({ id: 'vm-1', name: 'web' })
    expect(matches({ id: 'vm-1', name: 'other' })).toBe(true)
    expect(matches({ id: 'vm-2', name: 'web' })).toBe(false)
    expect(refMatcher(byName)({ id: 'vm-9', name: 'web' })).toBe(true)
  })
})

describe('act: each action on a VM runs only in the states it declares', () => {
  const row = (state: VmRunState, desired: VmRow['desired'] = 'stopped'): VmRow => ({ id: 'vm-1', name: 'web', state, desired, spec: pb.VmSpec.encode({ name: 'web' }).finish() } as unknown as VmRow)
  const ran: string[] = []
  const ctx = {
    vms: {
      info: (vm: VmRow) => ({ summary: { id: vm.id } }),
      start: async (id: string) => { ran.push(`start ${id}`); return row('running') },
      stop: async (id: string, force: boolean) => { ran.push(`stop ${id} ${String(force)}`); return row('stopped') },
      readConsole: async () => ({ data: new Uint8Array(0), nextOffset: 0 }),
      setReplication: () => row('running')
    },
    log: silentLogger,
    destination: (name: string) => name
  } as unknown as VmActionContext
  const actions: Record<string, VmAction> = {
    start: { op: 'start' },
    stop: { op: 'stop', force: false },
    delete: { op: 'delete', force: false },
    inspect: { op: 'inspect' },
    readConsole: { op: 'readConsole', offset: 0, maxBytes: 10 },
    migrate: { op: 'migrate', toHost: '', params: null },
    replicate: { op: 'replicate', replicas: 1, rpoMs: 0, spreadBy: '' },
    resize: { op: 'resize', size: { vcpus: 0, memoryBytes: 0, diskBytes: 2 ** 31 }, restart: false }
  }

  it('declares every action once', () => {
    expect(Object.keys(VM_ACTIONS).sort()).toEqual(Object.keys(actions).sort())
  })

  it.each(Object.keys(actions).flatMap((op) => VM_RUN_STATES.map((state) => [op, state] as const)))('%s of a %s VM', async (op, state) => {
    const legal = VM_ACTIONS[op as keyof typeof VM_ACTIONS].legal
    const allowed = legal === undefined || legal.states.includes(state)
    const run = runVmAction(row(state), actions[op] as VmAction, ctx)
    if (allowed) {
      // Past the state check: what fails now is the action's own work (no hypervisor here), never WRONG_STATE.
      await run.then(() => {}, (err: { code?: string }) => { expect(err.code).not.toBe('WRONG_STATE') })
    } else {
      await expect(run).rejects.toMatchObject({ code: 'WRONG_STATE', message: expect.stringMatching(new RegExp(`^cannot ${op} VM web: it is ${state}`)) as unknown })
    }
  })

  it('a start asked again while the VM is on its way up is let through (its answer waits for it)', async () => {
    ran.length = 0
    await runVmAction(row('starting', 'running'), { op: 'start' }, ctx)
    expect(ran).toEqual(['start vm-1'])
    await expect(runVmAction(row('starting', 'stopped'), { op: 'start' }, ctx)).rejects.toMatchObject({ code: 'WRONG_STATE' })
  })

  it('a migration says why it is refused: not migratable first, then the state', async () => {
    const pinned = { ...row('stopped'), spec: vmSpecFromWire({ name: 'web', notMigratable: true }) } as VmRow
    await expect(runVmAction(pinned, { op: 'migrate', toHost: '', params: null }, ctx)).rejects.toMatchObject({ code: 'NOT_MIGRATABLE' })
    await expect(runVmAction(row('crashed'), { op: 'migrate', toHost: '', params: null }, ctx)).rejects.toMatchObject({ code: 'WRONG_STATE', message: 'cannot migrate VM web: it is crashed (a running VM migrates live, a stopped one cold)' })
  })
})
