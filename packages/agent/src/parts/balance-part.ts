import type { VmSummary } from '@meshvirt/mesh'
import type { meshvirt } from '@meshvirt/proto'
import { Balancer, balanceReport, balanceView, BalanceSettingHolder, modeFromWire, nextSetting, ownVm, resolveKnobs, UsageSampler, type BalanceKnobs } from '../balance/index.js'
import { ControlError } from '../control/errors.js'
import type { EventDraft } from '../monitor/cluster-event.js'
import type { AgentFeature, FeatureContext, FeatureMesh } from './feature.js'
import type { HostParts } from './host-parts.js'
import type { MigrationPart } from './migration-part.js'

export interface BalancePart extends AgentFeature {
  readonly knobs: BalanceKnobs
  /** This host's VM summaries with what the balancer of every host reads: measured usage, no-balance. */
  annotate: (vms: VmSummary[]) => VmSummary[]
  /** Starts sampling and the loop, once migration and the event stream run. */
  start: (p: HostParts, deps: { migration: MigrationPart | undefined, emit: (d: EventDraft) => Promise<unknown> }) => void
  /** The loop (undefined before start, or when the driver cannot migrate). */
  readonly balancer: Balancer | undefined
  readonly setting: BalanceSettingHolder
}

/**
 * Rebalancing (docs/design.md, "Rebalancing"): the cluster-wide mode, gossiped in every advert
 * (newest wins); per-VM usage sampled and gossiped in the VM summaries; `cluster balance`; and the
 * loop that moves one VM at a time off this host when it stays above the mean (balance/).
 */
export function balanceFeature (ctx: FeatureContext, over: Partial<BalanceKnobs> = {}): BalancePart {
  const knobs = resolveKnobs(over)
  const log = ctx.root.child('balance', { host: ctx.selfId })
  const setting = new BalanceSettingHolder(ctx.store, (s) => {
    log.info('balance setting', { mode: s.mode, version: s.version, setBy: s.setBy })
    ctx.events.emit('features:changed', {})
  })
  const sampler = new UsageSampler()
  const noBalance = new Map<string, boolean>()
  let mesh: FeatureMesh | undefined
  let balancer: Balancer | undefined
  let emit: (d: EventDraft) => void = () => {}

  const view = (): ReturnType<typeof balanceView> => {
    if (mesh === undefined) return []
    const accel = mesh.view.get(ctx.selfId)?.advert.accelerator === 'kvm' ? 'kvm' : 'tcg'
    return balanceView(mesh.view.hosts(), ctx.selfId, ctx.localVms().map((row) => ownVm(row, accel, sampler.usage(row.id))))
  }

  const clusterBalance = async (req: meshvirt.v1.ControlRequest): Promise<meshvirt.v1.IControlResponse> => {
    const body = req.clusterBalance
    const wireMode = body?.mode ?? 0
    const mode = modeFromWire(wireMode)
    if (wireMode !== 0 && mode === undefined) throw new ControlError('INVALID_ARGUMENT', `unknown balance mode ${String(wireMode)}: use off, recommend or auto`)
    if (mode !== undefined) {
      setting.offer(nextSetting(mode, setting.current, ctx.selfId, Date.now()))
      emit({ kind: 'balance-mode-set', subjectHostId: ctx.selfId, message: `balancing set to ${mode}` })
    }
    return { balanceReport: balanceReport(view(), setting.current, knobs, body?.dryRun === true) }
  }

  return {
    name: 'balance',
    knobs,
    setting,
    get balancer () { return balancer },
    advert: () => ({ balance: setting.current }),
    attach: (m) => {
      mesh = m
      for (const h of m.view.hosts()) setting.offer(h.advert.balance)
      const off = m.view.subscribe((e) => { setting.offer(e.host.advert.balance) })
      ctx.teardown.add('balance setting', off)
    },
    handlers: () => ({ clusterBalance }),
    annotate: (vms) => vms.map((v) => {
      const usage = sampler.usage(v.id)
      const pinned = noBalance.get(v.id) === true
      return usage === undefined && !pinned ? v : { ...v, ...(usage !== undefined ? { usage } : {}), ...(pinned ? { noBalance: true } : {}) }
    }),
    start: (p, deps) => {
      emit = (d) => { void deps.emit(d).catch(() => {}) }
      startSampling(p, sampler, noBalance, knobs.sampleMs, () => { ctx.events.emit('features:changed', { hint: true }) })
      if (deps.migration === undefined) { log.info('no live migration with this driver: this host never moves VMs to balance'); return }
      const migration = deps.migration
      balancer = new Balancer({
        selfId: ctx.selfId, knobs, log, emit, view,
        setting: () => setting.current,
        move: async (vmId, to) => { await migration.source.migrate(vmId, to, null) }
      })
      balancer.start()
      const b = balancer
      p.teardown.add('balancer', async () => { await b.stop() })
    }
  }
}

/** Reads every running guest's counters each `sampleMs`, and at once when a VM arrives; tells the cluster when usage moved. */
function startSampling (p: HostParts, sampler: UsageSampler, noBalance: Map<string, boolean>, sampleMs: number, changed: () => void): void {
  let sampling: Promise<void> | undefined
  let again = false
  const sample = (): void => {
    if (sampling !== undefined) { again = true; return }
    sampling = (async () => {
      const running = p.vms.list().filter((vm) => vm.state === 'running')
      let moved = false
      for (const vm of running) {
        if (!noBalance.has(vm.id)) { noBalance.set(vm.id, vm.spec.noBalance); moved = true }
      }
      await Promise.all(running.map(async (vm) => {
        try {
          if (sampler.record(vm.id, await p.hypervisor.stats(vm.id))) moved = true
        } catch { /* stopped meanwhile: measured next time */ }
      }))
      const ids = new Set(running.map((vm) => vm.id))
      sampler.keepOnly(ids)
      for (const id of noBalance.keys()) if (!ids.has(id)) noBalance.delete(id)
      if (moved) changed()
    })().finally(() => {
      sampling = undefined
      if (again) { again = false; sample() }
    })
  }
  const timer = setInterval(sample, sampleMs)
  timer.unref()
  // A VM that arrives is sampled at once; other changes wait for the timer (no stats round per state change).
  const off = p.events.on('vm:changed', () => {
    if (p.vms.list().some((vm) => vm.state === 'running' && !noBalance.has(vm.id))) sample()
  })
  sample()
  p.teardown.add('usage sampling', async () => { clearInterval(timer); off(); await sampling })
}
