import { cpuBaseline } from '@meshvirt/placement'

/** TCG emulates the CPU it is told to; this one runs everywhere and migrates between any hosts. */
export const TCG_CPU_MODEL = 'qemu64'

export interface CpuHost {
  accelerator: string
  cpuFlags: readonly string[]
}

/**
 * The CPU model a VM gets when none is asked for (docs/design.md, "Migrate": a CPU model both hosts
 * support). Migratable: the most capable named model every KVM host of the cluster offers, so it
 * can move to any of them; under TCG the model is emulated, so `qemu64` moves anywhere. Not
 * migratable: the host's own CPU on KVM (fastest; it stays put).
 */
export function chooseCpuModel (hosts: readonly CpuHost[], migratable: boolean): string {
  const kvm = hosts.filter((h) => h.accelerator === 'kvm')
  if (kvm.length === 0 || kvm.length < hosts.length) return TCG_CPU_MODEL
  if (!migratable) return 'host'
  return cpuBaseline(kvm.map((h) => h.cpuFlags))?.name ?? TCG_CPU_MODEL
}
