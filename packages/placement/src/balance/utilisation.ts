import { allocatableAmount } from '../free-capacity.js'
import type { HostSnapshot } from '../host-snapshot.js'
import type { BalanceHost, BalanceVm } from './balance-types.js'

/** The two dimensions a host's utilisation is made of: demand ÷ capacity. */
export interface HostSize {
  /** Physical cores the host gives guests (total − hostReserved, no overcommit: demand is measured in cores). */
  cpuCores: number
  /** Memory the host may hand out. */
  memoryBytes: number
}

export function hostSize (h: HostSnapshot): HostSize {
  const c = h.capacity
  return {
    cpuCores: Math.max(0, c.total.vcpus - c.hostReserved.vcpus),
    memoryBytes: allocatableAmount(c.total.memoryBytes, c.hostReserved.memoryBytes, c.overcommit.memory)
  }
}

/** A VM's demand: what was measured, or its allocation while nothing has been (a new guest). */
export function vmDemand (vm: BalanceVm): { cpuCores: number, memoryBytes: number } {
  if (vm.usage !== undefined) return { cpuCores: vm.usage.cpuCores, memoryBytes: vm.usage.memoryBytes }
  return { cpuCores: vm.request.resources.vcpus, memoryBytes: vm.request.resources.memoryBytes }
}

/** The share of host `size` that `vm` takes: cpuWeight × cpu share + (1 − cpuWeight) × memory share. */
export function vmShare (vm: BalanceVm, size: HostSize, cpuWeight: number): number {
  const d = vmDemand(vm)
  return cpuWeight * ratio(d.cpuCores, size.cpuCores) + (1 - cpuWeight) * ratio(d.memoryBytes, size.memoryBytes)
}

/** Utilisation of a host: the sum of its VMs' shares (may pass 1 under CPU overcommit). */
export function hostUtilisation (host: BalanceHost, cpuWeight: number): number {
  const size = hostSize(host.snapshot)
  let u = 0
  for (const vm of host.vms) u += vmShare(vm, size, cpuWeight)
  return u
}

/** Hosts that take part: alive and active (a draining host is being emptied by drain, not by us). */
export function takesPart (h: HostSnapshot): boolean {
  const size = hostSize(h)
  return h.state === 'alive' && h.adminState === 'active' && size.cpuCores > 0 && size.memoryBytes > 0
}

/** Mean and coefficient of variation (σ ÷ mean, population σ) of a list of utilisations. */
export function spread (us: readonly number[]): { mean: number, cv: number } {
  if (us.length === 0) return { mean: 0, cv: 0 }
  let s1 = 0
  let s2 = 0
  for (const u of us) { s1 += u; s2 += u * u }
  return fromSums(s1, s2, us.length)
}

/** `spread` from Σu and Σu²: what a move changes is two terms of each. */
export function fromSums (s1: number, s2: number, n: number): { mean: number, cv: number } {
  const mean = s1 / n
  if (!(mean > 0)) return { mean: 0, cv: 0 }
  const variance = Math.max(0, s2 / n - mean * mean)
  return { mean, cv: Math.sqrt(variance) / mean }
}

function ratio (a: number, b: number): number {
  return b > 0 && Number.isFinite(a) ? a / b : 0
}
