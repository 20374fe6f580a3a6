import { SimHypervisor } from '@meshvirt/hypervisor'
import { afterEach, describe, expect, it } from 'vitest'
import { ControlClient } from '../src/control/control-client.js'
import { vmView } from '../src/control/vm-view.js'
import { condemns, KNOWN_REFRESH_MS, mergeTombstones, reconcileAdvert, TOMBSTONE_TTL_MS, unknownVms, type OwnerFacts } from '../src/records/known-vms.js'
import { startSimCluster, simVmSpec, type SimCluster } from '@meshvirt/testkit'
import type { KnownVm, VmTombstone } from '../src/store/vm-record-store.js'
import { vmSpecFromWire } from '../src/vm/vm-spec-codec.js'

const res = { vcpus: 1, memoryBytes: 128, diskBytes: 0 }
const known = (id: string, owner: string, over: Partial<KnownVm> = {}): KnownVm =>
  ({ id, name: `n-${id}`, owner, ownerHostname: `host-${owner}`, epoch: 1, state: 'running', group: '', resources: res, lastHeardAt: 1000, ...over })
const gossiped = (id: string, over: Partial<{ epoch: number, role: string, state: string }> = {}): { id: string, name: string, epoch: number, role: string, state: string, group: string, resources: typeof res } =>
  ({ id, name: `n-${id}`, epoch: 1, role: 'owner', state: 'running', group: '', resources: res, ...over })

describe('known VMs (pure)', () => {
  it.each([
    ['a new VM is put', [gossiped('v1')], [], 1000, ['v1'], []],
    ['unchanged and fresh: no write', [gossiped('v1')], [known('v1', 'A')], 1000 + KNOWN_REFRESH_MS - 1, [], []],
    ['unchanged but stale: refreshed', [gossiped('v1')], [known('v1', 'A')], 1000 + KNOWN_REFRESH_MS, ['v1'], []],
    ['a new state is put', [gossiped('v1', { state: 'stopped' })], [known('v1', 'A')], 1001, ['v1'], []],
    ['a VM the owner no longer lists is dropped', [], [known('v1', 'A'), known('v2', 'B')], 1001, [], ['v1']],
    ['replicas are not ownership', [gossiped('v1', { role: 'replica' })], [known('v1', 'B', { epoch: 2 })], 1001, [], []],
    ['an older owner does not overwrite a newer epoch', [gossiped('v1', { epoch: 1 })], [known('v1', 'B', { epoch: 2 })], 1001, [], []],
    ['a newer epoch moves the record', [gossiped('v1', { epoch: 3 })], [known('v1', 'B', { epoch: 2 })], 1001, ['v1'], []],
    ['a tombstoned VM is never put back', [gossiped('dead')], [], 1001, [], []]
  ] as const)('%s', (_name, vms, before, now, put, drop) => {
    const map = new Map(before.map((k) => [k.id, k]))
    const r = reconcileAdvert({ hostId: 'A', hostname: 'host-A', vms }, map, (id) => id === 'dead', now)
    expect(r.put.map((k) => k.id)).toEqual(put)
    expect(r.drop).toEqual(drop)
    for (const k of r.put) expect(k).toMatchObject({ owner: 'A', ownerHostname: 'host-A', lastHeardAt: now })
  })

  it('lists as unknown what no live host listed and whose owner is dead, gone or suspect', () => {
    const facts: Record<string, OwnerFacts> = {
      D: { liveness: 'dead', sinceMs: 5000, answered: undefined },
      S: { liveness: 'suspect', sinceMs: 6000, answered: false },
      L: { liveness: 'alive', sinceMs: 1, answered: true },
      Q: { liveness: 'alive', sinceMs: 1, answered: false }
    }
    const all = [known('a', 'D'), known('b', 'gone', { lastHeardAt: 4000 }), known('c', 'S'), known('d', 'L'), known('e', 'Q'), known('f', 'D'), known('g', 'SELF'), known('h', 'D')]
    const out = unknownVms(all, new Set(['f']), (id) => facts[id] ?? { liveness: undefined, sinceMs: 0, answered: undefined }, 'SELF', (id) => id === 'h')
    expect(out.map((u) => [u.vm.id, u.ownerLiveness, u.sinceMs])).toEqual([
      ['a', 'dead', 5000], ['b', 'gone', 4000], ['c', 'suspect', 6000], ['e', 'unreachable', 0]
    ])
  })

  it('merges tombstones: earliest deletion and highest epoch per VM, expired dropped, bounded to the newest', () => {
    const t = (vmId: string, deletedAt: number, epoch = 1): VmTombstone => ({ vmId, name: vmId, owner: 'A', epoch, deletedAt })
    const now = TOMBSTONE_TTL_MS + 100
    const merged = mergeTombstones([t('x', 9000, 1), t('old', 9), t('y', 9500)], [t('x', 8000, 2), t('z', 9900), t('', 9999)], now, TOMBSTONE_TTL_MS, 3)
    expect(merged).toEqual([t('z', 9900), t('y', 9500), t('x', 8000, 2)])
    expect(mergeTombstones(merged, [], now, TOMBSTONE_TTL_MS, 2).map((m) => m.vmId)).toEqual(['z', 'y'])
    expect(condemns(t('x', 1, 2), { id: 'x', epoch: 2 })).toBe(true)
    expect(condemns(t('x', 1, 2), { id: 'x', epoch: 3 })).toBe(false)
    expect(condemns(t('x', 1, 2), { id: 'y', epoch: 1 })).toBe(false)
  })
})

describe('a VM never vanishes (3 in-process agents, simulated hypervisor)', () => {
  let cluster: SimCluster | undefined
  afterEach(async () => {
    await cluster?.stop()
    cluster = undefined
  })
  const until = async <T>(check: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 20_000): Promise<T> => {
    const deadline = Date.now() + timeoutMs
    let last: unknown
    for (;;) {
      try {
        const v = await check()
        if (v !== undefined && v !== false) return v
      } catch (err) { last = err }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last !== undefined ? ` (${String(last)})` : ''}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }

  it('lists a dead host\'s VM as unknown (also after another agent restarts), force-deletes it, and the returning host deletes its copy without starting it', async () => {
    const c = cluster = await startSimCluster([{ vcpus: 4, memoryMiB: 2048 }, { vcpus: 4, memoryMiB: 2048 }, { vcpus: 4, memoryMiB: 2048 }], { timing: 'local' })
    const client = (i: number): ControlClient => new ControlClient(c.agents[i]!.controlSocket)
    const ls = async (i: number): Promise<ReturnType<typeof vmView>[]> => ((await client(i).call({ listVms: {} })).vmList?.vms ?? []).map(vmView)
    const doomed = c.agents[2]!
    const { vm } = await c.agents[0]!.broker.create(vmSpecFromWire({ ...simVmSpec('keep-me'), host: doomed.hostId }), 'key-keep-me')
    const id = vm.summary?.id as string
    expect(vm.summary?.owner).toBe(doomed.hostId)
    await until(() => doomed.vms.get(id)?.state === 'running', 'running on h2')
    // Every other host has heard of it (gossip) before its host dies.
    for (const i of [0, 1]) await until(async () => (await ls(i)).some((v) => v.id === id && v.state === 'running'), `listed on h${i}`)
    // (`vm ls` asks the live owner directly: wait for the gossiped advert itself, which is what outlives the owner.)
    for (const i of [0, 1]) await until(() => c.agents[i]!.mesh.view.get(doomed.hostId)?.advert.vms.some((v) => v.id === id && v.state === 'running'), `gossiped to h${i}`)
    const diedAt = Date.now()
    await doomed.stop()

    for (const i of [0, 1]) {
      const v = await until(async () => (await ls(i)).find((x) => x.id === id && x.unknown?.ownerLiveness === 'dead'), `unknown on h${i}`)
      expect(v).toMatchObject({ name: 'keep-me', state: 'unknown', owner: doomed.hostId, unknown: { ownerHostname: 'h2', lastState: 'running' } })
      expect(v.unknown!.sinceMs).toBeGreaterThanOrEqual(diedAt)
    }
    // The dashboard (gossip only) and /metrics of another host say so too.
    const mon = c.agents[1]!.monitoring
    const auth = { headers: { authorization: `Bearer ${mon.token as string}` } }
    const snapshot = await until(async () => {
      const s = await (await fetch(`${mon.url as string}/api/cluster`, auth)).json() as { vms: Array<{ id: string, state: string, ownerName: string, ownerLiveness?: string }> }
      return s.vms.find((v) => v.id === id && v.state === 'unknown')
    }, 'the dashboard snapshot to show the VM as unknown')
    expect(snapshot).toMatchObject({ ownerName: 'h2', ownerLiveness: 'dead' })
    expect(await mon.metrics.render()).toMatch(/meshvirt_vms_unknown\{owner_liveness="dead"\} 1/)
    const shown = vmView((await client(1).call({ inspectVm: { vm: { name: 'keep-me' } } })).vm ?? {})
    expect(shown).toMatchObject({ id, state: 'unknown' })

    // Another agent restarts: its store kept the record (its fresh view does not even have h2 yet).
    await c.agents[0]!.stop()
    await c.restart(0)
    const again = await until(async () => (await ls(0)).find((x) => x.id === id), 'listed on the restarted h0')
    expect(again.state).toBe('unknown')
    expect(['dead', 'gone']).toContain(again.unknown?.ownerLiveness)

    // Force delete from h1: gone from every listing, the name is free.
    const deleted = vmView((await client(1).call({ deleteVm: { vm: { name: 'keep-me' }, force: true } })).vm ?? {})
    expect(deleted).toMatchObject({ id, state: 'deleting' })
    for (const i of [0, 1]) await until(async () => !(await ls(i)).some((x) => x.id === id), `gone from h${i}`)
    const reused = await c.agents[0]!.broker.create(vmSpecFromWire(simVmSpec('keep-me')), 'key-keep-me-2')
    expect(reused.vm.summary?.id).not.toBe(id)

    // h2 comes back (its guest died with it): it deletes its copy and never starts it.
    const hv = new SimHypervisor({ hostLimits: { cpus: 4, memoryMiB: 2048 } })
    const started: string[] = []
    const start = hv.start.bind(hv)
    hv.start = async (vmId, ...rest) => { started.push(vmId); return await start(vmId, ...rest) }
    const back = await c.restart(2, hv)
    await until(() => back.vms.get(id) === undefined, 'the returning host to delete its copy')
    expect(started).not.toContain(id)
    for (const i of [0, 1, 2]) {
      const names = await until(async () => { const l = await ls(i); return l.some((x) => x.id === id) || !l.some((x) => x.id === reused.vm.summary?.id) ? undefined : l }, `only the new keep-me listed on h${i}`)
      expect(names.filter((x) => x.name === 'keep-me').map((x) => x.id)).toEqual([reused.vm.summary?.id])
    }
    // The tombstone is kept by the returning host too (it was pulled), and reported in the metrics.
    expect(await c.agents[1]!.monitoring.metrics.render()).toMatch(/meshvirt_vms_unknown\{owner_liveness="dead"\} 0/)
  }, 90_000)
})
