import { describe, expect, it } from 'vitest'
import { chooseCpuModel } from '../src/negotiate/cpu-model.js'

const haswell = ['sse2', 'ssse3', 'sse4_1', 'sse4_2', 'popcnt', 'aes', 'pclmulqdq', 'avx', 'xsave', 'f16c', 'rdrand', 'fsgsbase', 'avx2', 'bmi1', 'bmi2', 'fma', 'movbe', 'x2apic', 'cx16', 'lahf_lm', 'abm', 'erms', 'invpcid', 'pcid', 'smep', 'tsc_deadline_timer', 'vme', 'pse36', 'pge', 'mtrr', 'cmov', 'clflush', 'mmx', 'fxsr', 'syscall', 'nx', 'lm', 'pni', 'de', 'pse', 'tsc', 'msr', 'pae', 'mce', 'cx8', 'apic', 'sep', 'mca', 'pat', 'fpu', 'sse', 'rdtscp', 'xsaveopt', 'hypervisor', 'arat']

describe('chooseCpuModel', () => {
  it.each([
    ['no hosts', [], true, 'qemu64'],
    ['TCG everywhere: the emulated default moves anywhere', [{ accelerator: 'tcg', cpuFlags: haswell }], true, 'qemu64'],
    ['a mixed KVM/TCG cluster cannot migrate KVM ↔ TCG: the portable model', [{ accelerator: 'kvm', cpuFlags: haswell }, { accelerator: 'tcg', cpuFlags: haswell }], true, 'qemu64'],
    ['KVM, not migratable: the host CPU', [{ accelerator: 'kvm', cpuFlags: haswell }], false, 'host']
  ])('%s', (_what, hosts, migratable, model) => {
    expect(chooseCpuModel(hosts, migratable)).toBe(model)
  })

  it('KVM everywhere: a named model every host offers, never weaker than the oldest host', () => {
    const old = haswell.filter((f) => !['avx2', 'bmi1', 'bmi2', 'fma', 'movbe', 'invpcid', 'erms', 'fsgsbase', 'smep', 'abm'].includes(f))
    const both = chooseCpuModel([{ accelerator: 'kvm', cpuFlags: haswell }, { accelerator: 'kvm', cpuFlags: old }], true)
    const newOnly = chooseCpuModel([{ accelerator: 'kvm', cpuFlags: haswell }], true)
    expect(both).not.toBe('host')
    expect(both).not.toBe(newOnly)
    expect(chooseCpuModel([{ accelerator: 'kvm', cpuFlags: old }], true)).toBe(both)
  })
})
