import { randomUUID } from 'node:crypto'
import { formatSize, hostRows, vmView, type VmView } from '@meshvirt/agent'
import type { Command, CommandContext, OptionSpec } from '../command.js'
import { ago, renderTable } from '../table.js'
import { controlClient, dataDirOption, jsonOption } from './common.js'
import { formatDuration, hostNames, specFromFlags, vmRef, withFlag } from './vm-args.js'
import { spreadAdvice } from './spread-advice.js'

const DEFAULT_WAIT_S = 120
/** `vm start` of a replicated VM waits this long for its lease to start the guest. */
const START_LEASE_WAIT_MS = 30_000

function hostLabel (names: Map<string, string>, id: string): string {
  return names.get(id) ?? id.slice(-12)
}

/** `host-2 dead since 12:03:41 (last heard running at 12:03:30)`: why a VM is listed as unknown. */
export function unknownText (vm: VmView, names: Map<string, string>): string {
  const u = vm.unknown
  if (u === undefined) return ''
  const host = u.ownerHostname !== '' ? u.ownerHostname : hostLabel(names, vm.owner)
  const clock = (ms: number): string => new Date(ms).toTimeString().slice(0, 8)
  const since = u.sinceMs > 0 ? ` since ${clock(u.sinceMs)}` : ''
  const heard = u.lastHeardMs > 0 ? ` (last heard ${u.lastState} at ${clock(u.lastHeardMs)})` : ''
  return `${host} ${u.ownerLiveness}${since}${heard}`
}

function bootText (vm: VmView): string {
  const kernel = vm.boot.kernel !== '' ? `kernel ${vm.boot.kernel}${vm.boot.initrd !== '' ? ` initrd ${vm.boot.initrd}` : ''}` : ''
  const base = vm.boot.library.ref !== '' ? `image ${vm.boot.library.ref} (${vm.boot.library.digest.slice(0, 19)})` : vm.boot.image !== '' ? `image ${vm.boot.image}` : ''
  return [base, kernel].filter((s) => s !== '').join(', ')
}

/** `image debian-12:latest 45% (460 MiB of 1 GiB) after 12 s`: a fetch the VM waits for; '' when none. */
export function imageFetchText (vm: VmView, nowMs = Date.now()): string {
  const f = vm.imageFetch
  if (f === undefined) return ''
  const pct = f.chunkCount > 0 ? `${Math.floor((100 * f.chunksHeld) / f.chunkCount)}%` : 'starting'
  const bytes = f.sizeBytes > 0 ? ` (${formatSize(f.bytesHeld)} of ${formatSize(f.sizeBytes)})` : ''
  const after = f.startedAtMs > 0 ? ` after ${formatDuration(Math.max(0, nowMs - f.startedAtMs))}` : ''
  return `image ${f.ref !== '' ? f.ref : f.digest.slice(0, 19)} ${pct}${bytes}${after}`
}

function printVm (ctx: CommandContext, vm: VmView, names: Map<string, string>): void {
  const lines = [
    `name:      ${vm.name}`,
    `id:        ${vm.id}`,
    `state:     ${vm.state}`,
    `host:      ${hostLabel(names, vm.owner)} (${vm.owner})`,
    `epoch:     ${vm.epoch}`,
    `resources: ${vm.resources.vcpus} vCPU${vm.maxVcpus > 0 ? ` (up to ${vm.maxVcpus} online)` : ''}, ${formatSize(vm.resources.memoryBytes)} memory${vm.maxMemoryBytes > 0 ? ` (grows online to ${formatSize(vm.maxMemoryBytes)})` : ''}, ${formatSize(vm.resources.diskBytes)} disk`,
    `boot:      ${bootText(vm)}`
  ]
  if (vm.imageFetch !== undefined) lines.push(`fetching:  ${imageFetchText(vm)}`)
  for (const [i, nic] of vm.nics.entries()) lines.push(`${i === 0 ? 'nics:' : '     '}      ${nic.network.padEnd(12)} ${nic.ip.padEnd(15)} ${nic.mac}`)
  if (vm.guest !== null) lines.push(`guest:     hostname ${vm.guest.hostname !== '' ? vm.guest.hostname : `${vm.name} (the VM name)`}, ${vm.guest.sshKeys} SSH key(s), user-data ${vm.guest.userDataBytes} bytes`)
  if (vm.unknown !== undefined) lines.push(`unknown:   ${unknownText(vm, names)}`)
  lines.push(`restart:   ${vm.restart}${vm.restarts > 0 ? ` (restarted ${vm.restarts}×)` : ''}`)
  if (vm.group !== '') lines.push(`group:     ${vm.group}`)
  if (vm.createdAtMs > 0) lines.push(`created:   ${new Date(vm.createdAtMs).toISOString()}`)
  if (vm.startedAtMs > 0) lines.push(`started:   ${new Date(vm.startedAtMs).toISOString()}`)
  if (vm.lastError !== '') lines.push(`error:     ${vm.lastError}`)
  const m = vm.lastMigration
  if (m !== undefined) {
    lines.push(m.error === ''
      ? `migrated:  ${hostLabel(names, m.fromHost)} → ${hostLabel(names, m.toHost)} at ${new Date(m.finishedAtMs).toISOString()}, downtime ${m.downtimeMs.toFixed(0)} ms${m.pauseMs > 0 ? `, pause ${m.pauseMs.toFixed(0)} ms` : ''}, total ${m.totalMs.toFixed(0)} ms${migrationPath(m)}`
      : `migration: to ${hostLabel(names, m.toHost)} failed at ${new Date(m.finishedAtMs).toISOString()}: ${m.error}`)
  }
  if (m !== undefined && m.error !== '' && m.path !== '') lines.push(`  path:     ${m.path}${m.pathReason !== '' ? ` (${m.pathReason})` : ''}`)
  const r = vm.replication
  if (r !== undefined) {
    const pause = r.points > 0 ? `, guest paused ${r.lastPauseMs.toFixed(1)} ms per point (max ${r.maxPauseMs.toFixed(1)} ms)` : ''
    lines.push(`replicas:  ${r.replicas} wanted, RPO ${formatDuration(r.rpoMs)}${r.spreadBy !== '' ? `, spread by ${r.spreadBy}` : ''}, ${r.points} points${pause}`)
    if (r.lastError !== '') lines.push(`  last error: ${r.lastError}`)
    for (const h of r.holders) {
      const lag = h.lagMs === null ? 'no point yet' : `point ${h.seq}, lag ${formatDuration(h.lagMs)}`
      lines.push(`  ${(h.hostname !== '' ? h.hostname : h.hostId.slice(-12)).padEnd(16)} ${h.state.padEnd(12)} ${lag}, ${formatSize(h.sentBytes)} sent${h.lastError !== '' ? ` — ${h.lastError}` : ''}`)
    }
    if (r.holders.length < r.replicas) lines.push(`  ${r.replicas - r.holders.length} holder(s) still to place`)
  }
  const l = vm.lease
  if (l !== undefined) {
    const now = Date.now()
    const until = l.running && l.fenceAtMs > 0 ? `, renewed: fences in ${formatDuration(Math.max(0, l.fenceAtMs - now))} unless renewed again` : ''
    lines.push(`lease:     ${l.role} at epoch ${l.epoch}, ${l.running ? 'held' : 'not held (guest down)'}${until}`)
    lines.push(`  group: ${l.members.map((m) => `${hostLabel(names, m)}${m === l.witness ? ' (witness)' : ''}`).join(', ')}`)
  }
  if (vm.leaseHistory.length > 0) {
    lines.push('failover history:')
    for (const h of vm.leaseHistory) lines.push(`  ${new Date(h.atMs).toISOString()}  ${h.type.padEnd(14)} epoch ${h.epoch} on ${hostLabel(names, h.hostId)}${h.detail !== '' ? `: ${h.detail}` : ''}`)
  }
  const p = vm.placement
  if (p !== undefined) {
    lines.push('placement:', `  ${p.summary}`, `  chosen ${hostLabel(names, p.chosenHost)} with score ${p.totalScore.toFixed(3)} among ${p.candidates} candidates, after ${p.attempts} reservation attempt(s)`)
    for (const s of p.scores) lines.push(`    ${s.scorer.padEnd(16)} ${s.value.toFixed(3)} × weight ${s.weight}`)
    for (const r of p.rejected) lines.push(`  rejected ${hostLabel(names, r.hostId)}: ${r.filter} — ${r.reason}`)
  }
  ctx.out(lines.join('\n'))
}

export const vmCreateOptions: Record<string, OptionSpec> = {
  ...dataDirOption,
  ...jsonOption,
  name: { type: 'string', valueName: 'NAME', description: 'VM name, unique in the cluster (lowercase letters, digits, -)' },
  vcpus: { type: 'string', valueName: 'N', description: 'virtual CPUs (default 1)' },
  memory: { type: 'string', short: 'm', valueName: 'SIZE', description: 'memory, e.g. 512M or 2G; a bare number is MiB (default 256M)' },
  'max-memory': { type: 'string', valueName: 'SIZE', description: 'room to grow the memory while it runs (vm resize --memory, in 128 MiB steps), e.g. 8G; a Linux guest then keeps a 64 MiB DMA buffer (default none)' },
  'max-vcpus': { type: 'string', valueName: 'N', description: 'room for vCPUs while it runs (vm resize --vcpus online, up to 64); the guest onlines a new CPU as udev does (default none)' },
  disk: { type: 'string', valueName: 'SIZE', description: 'the VM\'s own disk (qcow2; an overlay on --image), e.g. 10G (default none)' },
  image: { type: 'string', valueName: 'NAME|FILE', description: 'base disk image: a library image (meshvirt image ls), fetched by whichever host runs the VM; or a file path on the chosen host' },
  kernel: { type: 'string', valueName: 'FILE', description: 'kernel to boot directly (with --initrd)' },
  initrd: { type: 'string', valueName: 'FILE', description: 'initrd for --kernel' },
  cmdline: { type: 'string', valueName: 'ARGS', description: 'kernel command line for --kernel' },
  label: { type: 'string', multiple: true, valueName: 'CONSTRAINT', description: 'host label constraint: zone=a, zone!=b, gpu, !gpu' },
  group: { type: 'string', valueName: 'GROUP', description: 'the VM\'s group, for others\' (anti-)affinity' },
  affinity: { type: 'string', multiple: true, valueName: 'GROUP', description: 'only hosts already running a VM of GROUP' },
  'anti-affinity': { type: 'string', multiple: true, valueName: 'GROUP', description: 'never hosts running a VM of GROUP' },
  'soft-affinity': { type: 'string', multiple: true, valueName: 'GROUP', description: 'prefer hosts running GROUP' },
  'soft-anti-affinity': { type: 'string', multiple: true, valueName: 'GROUP', description: 'prefer hosts not running GROUP' },
  policy: { type: 'string', valueName: 'POLICY', description: 'binpack (default: fill hosts) or spread (emptiest first)' },
  host: { type: 'string', valueName: 'HOST', description: 'pin to this host (name or id); it must still fit' },
  'cpu-model': { type: 'string', valueName: 'MODEL', description: 'QEMU CPU model (default: one every host offers, so the VM can migrate)' },
  'not-migratable': { type: 'boolean', description: 'give the VM the host\'s own CPU (KVM) instead; it then stays on its host' },
  'no-balance': { type: 'boolean', description: 'never moved by automatic rebalancing (drain and vm migrate still move it)' },
  replicas: { type: 'string', valueName: 'K', description: 'keep K replicas of the VM\'s disk on other hosts (needs --disk; default 0)' },
  rpo: { type: 'string', valueName: 'DURATION', description: 'recovery point objective: how old a replica may get, e.g. 5s (default 5s)' },
  'spread-by': { type: 'string', valueName: 'LABEL', description: 'failure-domain label, e.g. zone, site or rack: replicas spread over it, the --group too, and --(anti-)affinity holds per domain (default: per host)' },
  net: { type: 'string', multiple: true, valueName: 'NET[,ip=ADDR]', description: 'a NIC on network NET (repeatable, up to 4); its address is claimed for the VM and moves with it, or ip= asks for one' },
  hostname: { type: 'string', valueName: 'NAME', description: 'the guest\'s hostname, set by cloud-init at first boot (default: the VM name)' },
  'ssh-key': { type: 'string', multiple: true, valueName: 'FILE', description: 'OpenSSH public keys for the guest\'s default user (a file may hold several, one a line, e.g. ~/.ssh/id_ed25519.pub)' },
  'user-data': { type: 'string', valueName: 'FILE', description: 'cloud-init user-data (#cloud-config, a script, …) passed to the guest as given, at most 64 KiB' },
  restart: { type: 'string', valueName: 'POLICY', description: 'when the owner starts the guest again: on-crash (default: after QEMU crashed or was killed), always (also after the guest powered off), never' },
  'idempotency-key': { type: 'string', valueName: 'KEY', description: 'retry-safe key: the same key never creates two VMs (default: random)' },
  'no-wait': { type: 'boolean', description: 'return once placed, without waiting for the VM to run' },
  timeout: { type: 'string', valueName: 'SECONDS', description: `how long to wait for running (default ${DEFAULT_WAIT_S})` }
}

export const vmCreate: Command = {
  path: ['vm', 'create'],
  summary: 'create a VM: any agent negotiates its placement with the cluster',
  usage: 'meshvirt vm create --name NAME [--vcpus N] [--memory SIZE] [--disk SIZE] (--image NAME|FILE | --kernel FILE [--initrd FILE]) [placement flags]',
  options: vmCreateOptions,
  examples: [
    'meshvirt vm create --name web-1 --vcpus 2 --memory 2G --disk 20G --image debian-12',
    'meshvirt vm create --name web-0 --vcpus 2 --memory 2G --disk 20G --image /var/lib/images/debian-12.qcow2',
    'meshvirt vm create --name db-1 --memory 4G --disk 50G --image base.qcow2 --label zone=a --group db --anti-affinity db',
    'meshvirt vm create --name db-2 --memory 2G --disk 20G --image base.qcow2 --replicas 1 --rpo 5s --spread-by site',
    'meshvirt vm create --name web-2 --memory 1G --disk 10G --image base.qcow2 --net front --net back,ip=10.20.0.10',
    'meshvirt vm create --name web-3 --memory 1G --disk 10G --image debian-12 --hostname web3 --ssh-key ~/.ssh/id_ed25519.pub --user-data init.yaml',
    'meshvirt vm create --name t1 --memory 128M --kernel .cache/guest/vmlinux --initrd .cache/guest/initramfs.cpio --cmdline "console=ttyS0"'
  ],
  async run (ctx) {
    const spec = specFromFlags(ctx)
    const key = (ctx.values['idempotency-key'] as string | undefined) ?? randomUUID()
    const client = controlClient(ctx)
    const json = ctx.values.json === true
    if (!json) ctx.err(`creating ${spec.name} (idempotency key ${key}) …`)
    let res
    try {
      res = await client.call({ idempotencyKey: key, createVm: { spec } }, { timeoutMs: 60_000 }).catch((e: unknown) => { throw withFlag(e) })
    } catch (err) {
      // A lost answer is retried once with the same key: it can never create a second VM.
      if (!['TIMEOUT', 'UNAVAILABLE'].includes((err as { code?: string }).code ?? '')) throw withFlag(err)
      if (!json) ctx.err(`no answer (${(err as Error).message}); retrying with the same idempotency key`)
      res = await client.call({ idempotencyKey: key, createVm: { spec } }, { timeoutMs: 60_000 })
    }
    let vm = vmView(res.vm ?? {})
    const names = await hostNames(client)
    if ((spec.replicas ?? 0) > 0 && (spec.spreadBy ?? '') !== '') {
      const advice = spreadAdvice(hostRows((await client.call({ listHosts: {} })).hostList ?? { hosts: [], selfId: '' }), spec.spreadBy ?? '', spec.replicas ?? 0)
      if (advice !== undefined) ctx.err(advice)
    }
    if (!json) ctx.err(`placed on ${hostLabel(names, vm.owner)}: ${vm.placement?.summary ?? ''}`)
    if (ctx.values['no-wait'] !== true) {
      const deadline = Date.now() + Number(ctx.values.timeout ?? DEFAULT_WAIT_S) * 1000
      let last = ''
      let lastFetch = 0
      const misses = { count: 0 }
      while (vm.state !== 'running') {
        if (vm.state !== last && !json) ctx.err(`  ${vm.state} …`)
        last = vm.state
        // The image's fetch, when the host must get it first: a line a second at most.
        if (vm.imageFetch !== undefined && !json && Date.now() - lastFetch >= 1000) {
          ctx.err(`  fetching ${imageFetchText(vm)}`)
          lastFetch = Date.now()
        }
        if (vm.state === 'failed' || vm.state === 'crashed') throw Object.assign(new Error(`VM ${vm.name} ${vm.state} on ${hostLabel(names, vm.owner)}: ${vm.lastError}`), { code: 'FAILED' })
        if (Date.now() > deadline) throw Object.assign(new Error(`VM ${vm.name} is still ${vm.state} after the timeout; see meshvirt vm show ${vm.name}`), { code: 'TIMEOUT' })
        await new Promise((resolve) => setTimeout(resolve, 200))
        vm = await inspectWhileWaiting(ctx, client, vm, json, misses)
      }
      if (!json) ctx.err('  running')
    }
    if (json) ctx.out(JSON.stringify(vm, null, 2))
    else printVm(ctx, vm, names)
    return 0
  }
}

/**
 * One poll of the wait for running: the VM is placed and its host is starting it, so an agent
 * that does not answer this once (a broken stream, a busy host) is asked again at the next poll;
 * the wait's own deadline bounds it. Any other error ends the wait.
 */
async function inspectWhileWaiting (ctx: CommandContext, client: ReturnType<typeof controlClient>, vm: VmView, json: boolean, misses: { count: number }): Promise<VmView> {
  try {
    const seen = vmView((await client.call({ inspectVm: { vm: { id: vm.id } } })).vm ?? {})
    misses.count = 0
    return seen
  } catch (err) {
    if (!['TIMEOUT', 'UNAVAILABLE'].includes((err as { code?: string }).code ?? '')) throw err
    if (!json && misses.count++ === 0) ctx.err(`  no answer about ${vm.name} (${(err as Error).message}); asking again until the timeout`)
    return vm
  }
}

export const vmLs: Command = {
  path: ['vm', 'ls'],
  summary: 'list every VM of the cluster (asked of every host)',
  usage: 'meshvirt vm ls [--data-dir DIR] [--json]',
  options: { ...dataDirOption, ...jsonOption },
  examples: ['meshvirt vm ls', 'meshvirt vm ls --json | jq -r ".[].name"'],
  async run (ctx) {
    const client = controlClient(ctx)
    const res = await client.call({ listVms: {} })
    const vms = (res.vmList?.vms ?? []).map(vmView)
    if (ctx.values.json === true) {
      ctx.out(JSON.stringify(vms, null, 2))
      return 0
    }
    const names = await hostNames(client)
    const now = Date.now()
    ctx.out(renderTable(['NAME', 'ID', 'HOST', 'STATE', 'VCPU', 'MEMORY', 'DISK', 'REPLICAS', 'EPOCH', 'CREATED'], vms.map((vm) => [
      vm.name, vm.id, hostLabel(names, vm.owner), vm.unknown !== undefined ? `unknown — ${unknownText(vm, names)}` : vm.state, String(vm.resources.vcpus), formatSize(vm.resources.memoryBytes),
      vm.resources.diskBytes > 0 ? formatSize(vm.resources.diskBytes) : '-', replicaColumn(vm), String(vm.epoch), vm.createdAtMs > 0 ? ago(vm.createdAtMs, now) : '-'
    ])))
    return 0
  }
}

/** `in-sync/wanted`, e.g. 1/1; `-` without replicas. */
function replicaColumn (vm: VmView): string {
  const r = vm.replication
  if (r === undefined) return '-'
  return `${r.holders.filter((h) => h.state === 'in-sync').length}/${r.replicas}`
}

export const vmShow: Command = {
  path: ['vm', 'show'],
  summary: 'show a VM: where it runs, its state, and why it was placed there',
  usage: 'meshvirt vm show NAME|ID [--data-dir DIR] [--json]',
  options: { ...dataDirOption, ...jsonOption },
  examples: ['meshvirt vm show web-1', 'meshvirt vm show vm-3f2a9c0d1e4b5a67 --json'],
  async run (ctx) {
    const client = controlClient(ctx)
    const vm = vmView((await client.call({ inspectVm: { vm: vmRef(ctx) } })).vm ?? {})
    if (ctx.values.json === true) ctx.out(JSON.stringify(vm, null, 2))
    else printVm(ctx, vm, await hostNames(client))
    return 0
  }
}

function simpleVmCommand (action: 'start' | 'stop' | 'delete', summary: string, extra: Record<string, OptionSpec> = {}): Command {
  return {
    path: ['vm', action],
    summary,
    usage: `meshvirt vm ${action} NAME|ID [--data-dir DIR]${action !== 'start' ? ' [--force]' : ''}`,
    options: { ...dataDirOption, ...jsonOption, ...extra },
    examples: [`meshvirt vm ${action} web-1`],
    async run (ctx) {
      const client = controlClient(ctx)
      const vm = vmRef(ctx)
      const body = action === 'start' ? { startVm: { vm } } : action === 'stop' ? { stopVm: { vm, force: ctx.values.force === true } } : { deleteVm: { vm, force: ctx.values.force === true } }
      const res = await client.call({ idempotencyKey: randomUUID(), ...body }, { timeoutMs: 120_000 })
      let view = vmView(res.vm ?? {})
      // A replicated VM's guest starts once its lease is held (a renewal round, about a second):
      // fenced until then, pending once the lease resumes it, starting, then running.
      const deadline = Date.now() + (action === 'start' ? START_LEASE_WAIT_MS : 0)
      while (['fenced', 'pending', 'starting'].includes(view.state) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 200))
        view = vmView((await client.call({ inspectVm: { vm: { id: view.id } } })).vm ?? {})
      }
      if (ctx.values.json === true) ctx.out(JSON.stringify(view, null, 2))
      else if (action === 'delete') ctx.out(`deleted ${view.name} (${view.id})`)
      else ctx.out(`${view.name} is ${view.state}${view.state === 'fenced' ? ': it has replicas, and starts once its lease is held (see meshvirt vm show)' : ''}`)
      return 0
    }
  }
}

export const vmStart = simpleVmCommand('start', 'start a stopped VM on its owner host')
export const vmStop = simpleVmCommand('stop', 'stop a VM: ACPI power-down (pressed again every 3 s for 30 s), then SIGTERM, then SIGKILL', {
  force: { type: 'boolean', description: 'kill at once instead of asking the guest to power down' }
})
export const vmDelete = simpleVmCommand('delete', 'delete a VM: stop it, remove its disk, free its resources and name', {
  force: { type: 'boolean', description: 'the VM\'s host is dead or gone: forget the VM everywhere and free its name (a host that comes back with it deletes its copy)' }
})

/** `, via direct-tls (2 channels, auto: … reachable), 412 MB/s`: which path the bytes took and how fast RAM moved. */
function migrationPath (m: { path: string, pathReason: string, channels: number, throughputMBs: number }): string {
  if (m.path === '') return ''
  const how = [m.path === 'direct-tls' ? `${m.channels} channel${m.channels === 1 ? '' : 's'}` : '', m.pathReason].filter((x) => x !== '').join(', ')
  return `, via ${m.path}${how !== '' ? ` (${how})` : ''}${m.throughputMBs > 0 ? `, RAM at ${m.throughputMBs.toFixed(0)} MB/s` : ''}`
}
