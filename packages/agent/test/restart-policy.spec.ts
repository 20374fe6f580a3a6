import { SimHypervisor } from '@meshvirt/hypervisor'
import { afterEach, describe, expect, it } from 'vitest'
import { startSimCluster, simVmSpec, type SimCluster } from '@meshvirt/testkit'
import { exitKind, restartBackoffMs, restartDecision, restartPolicyFromWire, restartPolicyToWire, RESTART_RESET_AFTER_MS } from '../src/vm/restart-policy.js'
import { vmView } from '../src/control/vm-view.js'
import { vmSpecFromWire } from '../src/vm/vm-spec-codec.js'

describe('restart policy (pure)', () => {
  it.each([
    // policy, reason, restartsInARow, ranForMs → restart, delayMs
    ['on-crash', 'crashed', 0, 500, true, 250],
    ['on-crash', 'sigkill', 0, 500, true, 250],
    ['on-crash', 'sigterm', 1, 500, true, 500],
    ['on-crash', 'exited-while-detached', 2, 500, true, 1000],
    ['on-crash', 'crashed', 9, 500, true, 60_000],
    ['on-crash', 'crashed', 40, 500, true, 60_000],
    // ran long enough: the back-off starts afresh
    ['on-crash', 'crashed', 9, RESTART_RESET_AFTER_MS, true, 250],
    ['on-crash', 'guest-shutdown', 0, 500, false, 0],
    ['always', 'guest-shutdown', 0, 500, true, 250],
    ['always', 'crashed', 3, 500, true, 2000],
    ['never', 'crashed', 0, 500, false, 0],
    ['never', 'guest-shutdown', 0, 500, false, 0],
    ['always', 'migrated', 0, 500, false, 0]
  ] as const)('%s after %s (%i in a row, ran %i ms)', (policy, reason, restartsInARow, ranForMs, restart, delayMs) => {
    const d = restartDecision({ policy, reason, restartsInARow, ranForMs })
    expect(d.restart).toBe(restart)
    if (d.restart) {
      expect(d.delayMs).toBe(delayMs)
      expect(d.why).toMatch(new RegExp(`restart policy ${policy}: attempt \\d+ after ${delayMs} ms`))
    } else {
      expect(d.why).not.toBe('')
    }
  })

  it('classifies exits and doubles the back-off up to its cap', () => {
    expect(exitKind('guest-shutdown')).toBe('powered-off')
    expect(exitKind('migrated')).toBe('migrated')
    expect(exitKind('killed')).toBe('crashed')
    expect([1, 2, 3, 4, 5, 8, 9, 100].map((n) => restartBackoffMs(n))).toEqual([250, 500, 1000, 2000, 4000, 32_000, 60_000, 60_000])
    expect(restartBackoffMs(0)).toBe(250)
  })

  it('maps the wire enum; unset is on-crash', () => {
    for (const p of ['never', 'on-crash', 'always'] as const) expect(restartPolicyFromWire(restartPolicyToWire(p))).toBe(p)
    expect(restartPolicyFromWire(0)).toBe('on-crash')
    expect(restartPolicyFromWire(undefined)).toBe('on-crash')
  })
})

describe('restart policy on an agent (simulated hypervisor)', () => {
  let cluster: SimCluster | undefined
  afterEach(async () => {
    await cluster?.stop()
    cluster = undefined
  })

  const restartsMetric = (text: string, vmId: string): number => {
    const line = text.split('\n').find((l) => l.startsWith('meshvirt_vm_restarts_total{') && l.includes(`vm="${vmId}"`))
    return line === undefined ? 0 : Number(line.split(' ').at(-1))
  }
  const until = async <T>(check: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 10_000): Promise<T> => {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const v = await check()
      if (v !== undefined && v !== false) return v
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  it('starts a crashed guest again (event, metric, vm show); never keeps it crashed; a powered-off guest stays off unless always', async () => {
    cluster = await startSimCluster([{ vcpus: 8, memoryMiB: 4096 }], { timing: 'local' })
    const agent = cluster.agents[0]!
    const hv = agent.hypervisor as SimHypervisor
    const create = async (name: string, restart?: number): Promise<string> => {
      const { vm } = await agent.broker.create(vmSpecFromWire({ ...simVmSpec(name), ...(restart !== undefined ? { restart } : {}) }), `key-${name}`)
      const id = vm.summary?.id as string
      await until(() => agent.vms.get(id)?.state === 'running', `${name} running`)
      return id
    }
    const onCrash = await create('rs-default')
    const never = await create('rs-never', restartPolicyToWire('never'))
    const always = await create('rs-always', restartPolicyToWire('always'))

    // Crash (QEMU killed from outside): running again, told as vm-restarted, counted.
    const crashedAt = Date.now()
    hv.crash(onCrash)
    await until(() => agent.vms.get(onCrash)?.state === 'crashed' || agent.vms.get(onCrash)?.state === 'running', 'the crash recorded')
    await until(() => agent.vms.get(onCrash)?.state === 'running' && (agent.vms.get(onCrash)?.startedAt ?? 0) >= crashedAt, 'rs-default running again')
    const ring = (): Array<{ kind: string, vmId: string, message: string }> => agent.monitoring.events.ring.list({ limit: 1000 }).events.map((r) => r.event)
    const restarted = await until(() => ring().find((e) => e.kind === 'vm-restarted' && e.vmId === onCrash), 'the vm-restarted event')
    expect(restarted.message).toMatch(/its QEMU exited \(crashed\), restart policy on-crash: attempt 1 after 250 ms/)
    expect(ring().some((e) => e.kind === 'vm-crashed' && e.vmId === onCrash)).toBe(true)
    expect(restartsMetric(await agent.monitoring.metrics.render(), onCrash)).toBe(1)
    expect(vmView(agent.vms.info(agent.vms.get(onCrash)!))).toMatchObject({ restart: 'on-crash', restarts: 1, state: 'running' })

    // A second crash soon after: the back-off doubles.
    hv.crash(onCrash)
    const second = await until(() => ring().filter((e) => e.kind === 'vm-restarted' && e.vmId === onCrash)[1], 'the second restart')
    expect(second.message).toMatch(/attempt 2 after 500 ms/)

    // never: stays crashed (well past the first back-off).
    hv.crash(never)
    await until(() => agent.vms.get(never)?.state === 'crashed', 'rs-never crashed')
    await new Promise((resolve) => setTimeout(resolve, 1000))
    expect(agent.vms.get(never)?.state).toBe('crashed')
    expect(restartsMetric(await agent.monitoring.metrics.render(), never)).toBe(0)

    // The guest powers itself off: on-crash leaves it off, always starts it again.
    await hv.stop(onCrash)
    await hv.stop(always)
    await until(() => agent.vms.get(always)?.state === 'running' && ring().some((e) => e.kind === 'vm-restarted' && e.vmId === always), 'rs-always running again')
    expect(agent.vms.get(onCrash)?.state).toBe('stopped')
    expect(ring().filter((e) => e.kind === 'vm-restarted' && e.vmId === onCrash)).toHaveLength(2)
  }, 60_000)

  it('a restart whose start fails is tried again after the next back-off', async () => {
    cluster = await startSimCluster([{ vcpus: 8, memoryMiB: 4096 }], { timing: 'local' })
    const agent = cluster.agents[0]!
    const hv = agent.hypervisor as SimHypervisor
    const { vm } = await agent.broker.create(vmSpecFromWire(simVmSpec('rs-retry')), 'key-rs-retry')
    const id = vm.summary?.id as string
    await until(() => agent.vms.get(id)?.state === 'running', 'running')
    const start = hv.start.bind(hv)
    let failures = 1
    hv.start = async (vmId, ...rest) => {
      if (vmId === id && failures-- > 0) throw new Error('injected: QEMU would not start')
      return await start(vmId, ...rest)
    }
    hv.crash(id)
    await until(() => agent.vms.get(id)?.state === 'failed', 'the first restart to fail')
    await until(() => agent.vms.get(id)?.state === 'running', 'running after the second attempt')
    const ring = agent.monitoring.events.ring.list({ limit: 1000 }).events.map((r) => r.event)
    expect(ring.filter((e) => e.kind === 'vm-restarted' && e.vmId === id).map((e) => e.message)).toEqual([expect.stringMatching(/attempt 2 after 500 ms/)])
  }, 30_000)

  it('an operator\'s start or delete during the back-off wins: no restart on top of it', async () => {
    cluster = await startSimCluster([{ vcpus: 8, memoryMiB: 4096 }], { timing: 'local' })
    const agent = cluster.agents[0]!
    const hv = agent.hypervisor as SimHypervisor
    const { vm } = await agent.broker.create(vmSpecFromWire(simVmSpec('rs-race')), 'key-rs-race')
    const id = vm.summary?.id as string
    await until(() => agent.vms.get(id)?.state === 'running', 'running')
    hv.crash(id)
    await until(() => agent.vms.get(id)?.state === 'crashed', 'crashed')
    await agent.vms.delete(id) // within the 250 ms back-off
    await new Promise((resolve) => setTimeout(resolve, 600))
    expect(agent.vms.get(id)).toBeUndefined()
    await expect(hv.inspect(id)).rejects.toThrow()
  }, 30_000)
})
