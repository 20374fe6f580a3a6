import { formatDisk, formatMemory } from './format-units.js'
import type { FilterCode, Rejection } from './rejection.js'

interface Group { filter: FilterCode, detail: string | undefined, count: number, need: number, mostFree: number }

const ORDER: readonly FilterCode[] = ['HOST_STATE', 'CAPACITY_CPU', 'CAPACITY_MEMORY', 'CAPACITY_DISK', 'ACCELERATOR',
  'LABELS', 'AFFINITY', 'ANTI_AFFINITY', 'CPU_MODEL', 'EXCLUDED', 'FAILURE_DOMAIN']

/** "1 lacks" / "3 lack": the count is the subject of every phrase. */
function verb (n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`
}

function phrase (g: Group): string {
  const n = g.count
  const free = Math.max(0, g.mostFree)
  switch (g.filter) {
    case 'HOST_STATE': return `${verb(n, 'is', 'are')} ${g.detail ?? 'unavailable'}`
    case 'CAPACITY_MEMORY': return `${verb(n, 'lacks', 'lack')} memory (need ${formatMemory(g.need)}, most free ${formatMemory(free)})`
    case 'CAPACITY_CPU': return `${verb(n, 'lacks', 'lack')} vCPUs (need ${g.need}, most free ${free})`
    case 'CAPACITY_DISK': return `${verb(n, 'lacks', 'lack')} disk (need ${formatDisk(g.need)}, most free ${formatDisk(free)})`
    case 'ACCELERATOR': return g.detail === undefined || g.detail === 'kvm' ? `${verb(n, 'has', 'have')} no KVM` : `${verb(n, 'runs', 'run')} KVM, not ${g.detail.toUpperCase()} (never across accelerators)`
    case 'LABELS': return `${verb(n, 'does', 'do')} not match ${g.detail ?? 'the label constraints'}`
    case 'AFFINITY': return `${verb(n, 'runs', 'run')} no VM of group ${g.detail ?? '?'}`
    case 'ANTI_AFFINITY': return `${verb(n, 'runs', 'run')} a VM of group ${g.detail ?? '?'}`
    case 'CPU_MODEL': return `${verb(n, 'cannot', 'cannot')} offer CPU model ${g.detail ?? '?'}`
    case 'EXCLUDED': return g.detail === undefined ? `${verb(n, 'is', 'are')} excluded` : `${verb(n, 'is', 'are')} not the pinned host ${g.detail}`
    case 'FAILURE_DOMAIN': return `${verb(n, 'has', 'have')} no ${g.detail ?? 'failure-domain'} label`
  }
}

/**
 * One line an operator can act on: "no host fits: 3 lack memory (need 4096 MiB, most free 2048
 * MiB), 1 is draining". Hosts are grouped by filter (and by state, constraint or group within
 * it), largest group first. `fitting` is how many hosts passed; when some did, the line says so.
 */
export function summarizeRejections (rejections: readonly Rejection[], fitting = 0): string {
  const groups = new Map<string, Group>()
  for (const r of rejections) {
    const detail = r.filter === 'HOST_STATE' ? r.state : r.detail
    const key = `${r.filter}\u0000${detail ?? ''}`
    let g = groups.get(key)
    if (g === undefined) {
      g = { filter: r.filter, detail, count: 0, need: 0, mostFree: Number.NEGATIVE_INFINITY }
      groups.set(key, g)
    }
    g.count++
    if (r.need !== undefined) g.need = Math.max(g.need, r.need)
    if (r.free !== undefined && Number.isFinite(r.free)) g.mostFree = Math.max(g.mostFree, r.free)
  }
  const parts = [...groups.values()]
    .sort((a, b) => b.count - a.count || ORDER.indexOf(a.filter) - ORDER.indexOf(b.filter))
    .map(phrase)
  if (fitting === 0) {
    return parts.length === 0 ? 'no host fits: the view holds no hosts' : `no host fits: ${parts.join(', ')}`
  }
  const total = fitting + rejections.length
  return parts.length === 0 ? `${fitting} of ${total} hosts fit` : `${fitting} of ${total} hosts fit; ${parts.join(', ')}`
}
