/**
 * QEMU 7.2's named x86 CPU models and the host CPU flags each needs, spelled as Linux
 * /proc/cpuinfo spells them (pni = SSE3, lahf_lm, sse4_1, …). Derived from QEMU 7.2's own
 * `query-cpu-model-expansion type=static` for each model, with these left out because KVM offers
 * them on every host alike or they do not show in /proc/cpuinfo: hypervisor, x2apic, tsc-deadline,
 * arat, monitor (filtered by KVM everywhere), npt/nrip-save (nested SVM only), mtrr (KVM emulates
 * the MTRRs itself, and some hypervisors hide the flag from their guests' /proc/cpuinfo), and the
 * ARCH_CAPABILITIES bits (emulated by KVM). QEMU's `spec-ctrl` shows as `ibrs` in /proc/cpuinfo,
 * `amd-stibp` as `stibp`, `amd-ssbd` as `ssbd`.
 *
 * Models are listed from least to most capable; `generation` orders them across vendors by ISA
 * level (x86-64-v1 … v4), so the baseline of a mixed cluster is the richest model all can run.
 */
export interface CpuModel {
  /** The name operators pass to `-cpu` (an alias of `version`). */
  name: string
  /** The versioned QEMU model it stands for in 7.2, so machine-type changes cannot shift it. */
  version: string
  vendor: 'any' | 'intel' | 'amd'
  generation: number
  flags: readonly string[]
}

const QEMU64 = ['fpu', 'de', 'pse', 'tsc', 'msr', 'pae', 'mce', 'cx8', 'apic', 'sep', 'pge', 'mca', 'cmov',
  'pat', 'pse36', 'clflush', 'mmx', 'fxsr', 'sse', 'sse2', 'syscall', 'nx', 'lm', 'pni', 'cx16', 'lahf_lm']
const NEHALEM = [...QEMU64, 'ssse3', 'sse4_1', 'sse4_2', 'popcnt']
const WESTMERE = [...NEHALEM, 'aes', 'pclmulqdq']
const SANDY_BRIDGE = [...WESTMERE, 'avx', 'xsave', 'xsaveopt', 'rdtscp']
const IVY_BRIDGE = [...SANDY_BRIDGE, 'erms', 'f16c', 'fsgsbase', 'rdrand', 'smep']
const HASWELL = [...IVY_BRIDGE, 'abm', 'avx2', 'bmi1', 'bmi2', 'fma', 'invpcid', 'movbe', 'pcid']
const BROADWELL = [...HASWELL, '3dnowprefetch', 'adx', 'rdseed', 'smap']
const SKYLAKE_CLIENT = [...BROADWELL, 'ibrs', 'xgetbv1', 'xsavec']
const SKYLAKE_SERVER = [...SKYLAKE_CLIENT, 'avx512f', 'avx512dq', 'avx512cd', 'avx512bw', 'avx512vl', 'clwb', 'pdpe1gb', 'pku']
const CASCADELAKE = [...SKYLAKE_SERVER, 'avx512_vnni', 'clflushopt', 'ssbd']
const ICELAKE = [...CASCADELAKE, 'avx512vbmi', 'avx512_vbmi2', 'avx512_bitalg', 'avx512_vpopcntdq', 'gfni', 'vaes',
  'vpclmulqdq', 'la57', 'umip', 'wbnoinvd']
const OPTERON_G3 = [...QEMU64, 'abm', 'misalignsse', 'popcnt', 'rdtscp', 'sse4a']
const OPTERON_G4 = [...OPTERON_G3, '3dnowprefetch', 'aes', 'avx', 'fma4', 'pclmulqdq', 'pdpe1gb', 'sse4_1', 'sse4_2',
  'ssse3', 'xop', 'xsave']
const OPTERON_G5 = [...OPTERON_G4, 'f16c', 'fma', 'tbm']
const EPYC = [...QEMU64, '3dnowprefetch', 'abm', 'adx', 'aes', 'avx', 'avx2', 'bmi1', 'bmi2', 'clflushopt', 'cr8_legacy',
  'f16c', 'fma', 'fsgsbase', 'fxsr_opt', 'misalignsse', 'mmxext', 'movbe', 'osvw', 'pclmulqdq', 'pdpe1gb', 'popcnt',
  'rdrand', 'rdseed', 'rdtscp', 'sha_ni', 'smap', 'smep', 'sse4_1', 'sse4_2', 'sse4a', 'ssse3', 'topoext', 'xgetbv1',
  'xsave', 'xsavec', 'xsaveopt']
const EPYC_ROME = [...EPYC, 'clwb', 'clzero', 'ibpb', 'perfctr_core', 'rdpid', 'stibp', 'umip', 'wbnoinvd', 'xsaveerptr', 'xsaves']
const EPYC_MILAN = [...EPYC_ROME, 'erms', 'fsrm', 'ibrs', 'invpcid', 'pcid', 'pku', 'ssbd']

/** Least to most capable. The noTSX variants: TSX is disabled by microcode on most hosts now. */
export const CPU_MODELS: readonly CpuModel[] = [
  { name: 'qemu64', version: 'qemu64', vendor: 'any', generation: 10, flags: QEMU64 },
  { name: 'Opteron_G3', version: 'Opteron_G3-v1', vendor: 'amd', generation: 15, flags: OPTERON_G3 },
  { name: 'Nehalem', version: 'Nehalem-v1', vendor: 'intel', generation: 20, flags: NEHALEM },
  { name: 'Westmere', version: 'Westmere-v1', vendor: 'intel', generation: 30, flags: WESTMERE },
  { name: 'Opteron_G4', version: 'Opteron_G4-v1', vendor: 'amd', generation: 35, flags: OPTERON_G4 },
  { name: 'SandyBridge', version: 'SandyBridge-v1', vendor: 'intel', generation: 40, flags: SANDY_BRIDGE },
  { name: 'Opteron_G5', version: 'Opteron_G5-v1', vendor: 'amd', generation: 45, flags: OPTERON_G5 },
  { name: 'IvyBridge', version: 'IvyBridge-v1', vendor: 'intel', generation: 50, flags: IVY_BRIDGE },
  { name: 'Haswell-noTSX', version: 'Haswell-v2', vendor: 'intel', generation: 60, flags: HASWELL },
  { name: 'Broadwell-noTSX', version: 'Broadwell-v2', vendor: 'intel', generation: 70, flags: BROADWELL },
  { name: 'Skylake-Client-noTSX-IBRS', version: 'Skylake-Client-v3', vendor: 'intel', generation: 80, flags: SKYLAKE_CLIENT },
  { name: 'EPYC', version: 'EPYC-v1', vendor: 'amd', generation: 85, flags: EPYC },
  { name: 'Skylake-Server-noTSX-IBRS', version: 'Skylake-Server-v3', vendor: 'intel', generation: 90, flags: SKYLAKE_SERVER },
  { name: 'EPYC-Rome', version: 'EPYC-Rome-v1', vendor: 'amd', generation: 95, flags: EPYC_ROME },
  { name: 'Cascadelake-Server-noTSX', version: 'Cascadelake-Server-v3', vendor: 'intel', generation: 100, flags: CASCADELAKE },
  { name: 'EPYC-Milan', version: 'EPYC-Milan-v1', vendor: 'amd', generation: 105, flags: EPYC_MILAN },
  { name: 'Icelake-Server-noTSX', version: 'Icelake-Server-v2', vendor: 'intel', generation: 110, flags: ICELAKE }
]

/** The model by operator name or versioned name; undefined for names this table does not know. */
export function findCpuModel (name: string): CpuModel | undefined {
  return CPU_MODELS.find((m) => m.name === name || m.version === name)
}

/** Flags of `model` that `hostFlags` lacks (empty: the host can offer the model). */
export function missingCpuFlags (model: CpuModel, hostFlags: ReadonlySet<string>): string[] {
  return model.flags.filter((f) => !hostFlags.has(f))
}
