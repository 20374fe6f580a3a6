import { randomUUID } from 'node:crypto'
import { formatSize, parseSize, vmView } from '@meshvirt/agent'
import { UsageError, type Command } from '../command.js'
import { controlClient, dataDirOption, jsonOption } from './common.js'
import { vmRef, wholeNumber } from './vm-args.js'

/** A restart under TCG: the guest's stop (ACPI, then a kill) and its start again. */
const RESIZE_TIMEOUT_MS = 120_000

export const vmResize: Command = {
  path: ['vm', 'resize'],
  summary: 'change a VM\'s vCPUs, memory or disk (granted by its host; a running VM\'s disk grows online, its memory and vCPUs within --max-memory and --max-vcpus)',
  usage: 'meshvirt vm resize NAME|ID [--vcpus N] [--memory SIZE] [--disk SIZE] [--max-memory SIZE] [--max-vcpus N] [--restart]',
  options: {
    ...dataDirOption,
    ...jsonOption,
    vcpus: { type: 'string', short: 'c', valueName: 'N', description: 'the new vCPU count' },
    memory: { type: 'string', short: 'm', valueName: 'SIZE', description: 'the new memory, e.g. 1G; a bare number is MiB' },
    disk: { type: 'string', short: 'd', valueName: 'SIZE', description: 'the new disk size (it only grows; the guest then grows its file system)' },
    'max-memory': { type: 'string', valueName: 'SIZE', description: 'room to grow the memory while it runs (a stopped VM, or with --restart)' },
    'max-vcpus': { type: 'string', valueName: 'N', description: 'room for vCPUs while it runs (a stopped VM, or with --restart)' },
    restart: { type: 'boolean', description: 'a running VM\'s vCPUs and memory beyond what grows online: stop it, resize it, start it again' }
  },
  examples: [
    'meshvirt vm resize web-1 --disk 30G                 # running or stopped: the guest sees the new size',
    'meshvirt vm resize web-1 --memory 4G --restart      # stopped, resized, started again (online: within --max-memory)',
    'meshvirt vm stop web-1 && meshvirt vm resize web-1 --vcpus 1 --memory 8G && meshvirt vm start web-1'
  ],
  async run (ctx) {
    const v = ctx.values
    if (v.vcpus === undefined && v.memory === undefined && v.disk === undefined && v['max-memory'] === undefined && v['max-vcpus'] === undefined) throw new UsageError('say what to resize: --vcpus N, --memory SIZE, --disk SIZE, --max-memory SIZE and/or --max-vcpus N')
    const vcpus = v.vcpus === undefined ? 0 : wholeNumber(v.vcpus as string, '--vcpus')
    if (v.vcpus !== undefined && vcpus < 1) throw new UsageError('--vcpus must be at least 1')
    const memoryBytes = v.memory === undefined ? 0 : parseSize(v.memory as string, '--memory')
    const diskBytes = v.disk === undefined ? 0 : parseSize(v.disk as string, '--disk')
    const maxMemoryBytes = v['max-memory'] === undefined ? 0 : parseSize(v['max-memory'] as string, '--max-memory')
    if ((v.memory !== undefined && memoryBytes === 0) || (v.disk !== undefined && diskBytes === 0) || (v['max-memory'] !== undefined && maxMemoryBytes === 0)) throw new UsageError('a size must be more than 0')
    const maxVcpus = v['max-vcpus'] === undefined ? 0 : wholeNumber(v['max-vcpus'] as string, '--max-vcpus')
    if (v['max-vcpus'] !== undefined && maxVcpus < 1) throw new UsageError('--max-vcpus must be at least 1')
    const restart = v.restart === true
    if (restart && v.json !== true) ctx.err('the guest is stopped, resized and started again …')
    const res = await controlClient(ctx).call({ idempotencyKey: randomUUID(), resizeVm: { vm: vmRef(ctx), vcpus, memoryBytes, diskBytes, maxMemoryBytes, maxVcpus, restart } }, { timeoutMs: RESIZE_TIMEOUT_MS })
    const vm = vmView(res.vm ?? {})
    if (v.json === true) { ctx.out(JSON.stringify(vm, null, 2)); return 0 }
    const r = vm.resources
    ctx.out(`${vm.name}: ${r.vcpus} vCPU${vm.maxVcpus > 0 ? ` (up to ${vm.maxVcpus} online)` : ''}, ${formatSize(r.memoryBytes)} memory${vm.maxMemoryBytes > 0 ? ` (grows online to ${formatSize(vm.maxMemoryBytes)})` : ''}, ${r.diskBytes > 0 ? formatSize(r.diskBytes) : 'no'} disk; ${vm.state}`)
    if (diskBytes > 0) ctx.err('the disk grew: grow the partition and file system inside the guest (cloud-init\'s growpart does it at boot)')
    return 0
  }
}
