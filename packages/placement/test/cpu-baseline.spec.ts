import { existsSync, readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { CPU_MODELS, cpuBaseline, findCpuModel, missingCpuFlags } from '../src/index.js'

const flagsOf = (name: string): Set<string> => new Set(findCpuModel(name)?.flags)

/** The flags line of /proc/cpuinfo on the machine this package was built on: AMD (Zen 4) under a hypervisor. */
const BUILD_MACHINE_FLAGS = ('fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht ' +
  'syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid extd_apicid ' +
  'tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx ' +
  'f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw topoext vmmcall ' +
  'fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid avx512f avx512dq rdseed adx smap avx512ifma clflushopt clwb ' +
  'avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves avx512_bf16 clzero xsaveerptr arat avx512vbmi umip ' +
  'avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq rdpid fsrm').split(' ')

describe('CPU model table', () => {
  it('lists every model with at least the flags of the one its family builds on', () => {
    const chains = [
      ['qemu64', 'Nehalem', 'Westmere', 'SandyBridge', 'IvyBridge', 'Haswell-noTSX', 'Broadwell-noTSX',
        'Skylake-Client-noTSX-IBRS', 'Skylake-Server-noTSX-IBRS', 'Cascadelake-Server-noTSX', 'Icelake-Server-noTSX'],
      ['qemu64', 'Opteron_G3', 'Opteron_G4', 'Opteron_G5'],
      ['qemu64', 'EPYC', 'EPYC-Rome', 'EPYC-Milan']
    ]
    for (const chain of chains) {
      for (let i = 1; i < chain.length; i++) {
        const older = findCpuModel(chain[i - 1] as string)
        const newer = findCpuModel(chain[i] as string)
        expect(newer?.generation).toBeGreaterThan(older?.generation ?? Infinity)
        expect(missingCpuFlags(older!, new Set(newer?.flags))).toEqual([])
      }
    }
  })

  it('uses /proc/cpuinfo spellings, not QEMU property names', () => {
    const all = new Set(CPU_MODELS.flatMap((m) => m.flags))
    for (const qemuName of ['sse4.1', 'sse4.2', 'lahf-lm', 'spec-ctrl', 'sha-ni', 'sse3', 'tsc-deadline']) expect(all.has(qemuName)).toBe(false)
    for (const linuxName of ['sse4_1', 'lahf_lm', 'pni', 'ibrs', 'sha_ni']) expect(all.has(linuxName)).toBe(true)
  })
})

describe('cpuBaseline', () => {
  it.each([
    [['Haswell-noTSX', 'Broadwell-noTSX', 'Skylake-Client-noTSX-IBRS'], 'Haswell-noTSX'],
    [['Skylake-Server-noTSX-IBRS', 'Icelake-Server-noTSX'], 'Skylake-Server-noTSX-IBRS'],
    [['Icelake-Server-noTSX'], 'Icelake-Server-noTSX'],
    [['EPYC-Milan', 'EPYC-Rome'], 'EPYC-Rome'],
    // Two AMD generations meet on an Intel model: a guest cares about the flags, not the vendor
    // string, and Westmere's aes + pclmulqdq beat everything Opteron_G3 offers.
    [['EPYC', 'Opteron_G5'], 'Westmere'],
    [['Nehalem', 'Opteron_G4'], 'Nehalem'],
    [['Opteron_G3', 'Opteron_G5'], 'Opteron_G3'],
    [['qemu64', 'Icelake-Server-noTSX'], 'qemu64']
  ])('hosts able to run %j → %s', (models, expected) => {
    expect(cpuBaseline(models.map(flagsOf))?.name).toBe(expected)
  })

  it('is undefined for no hosts and qemu64 for hosts with bare x86-64', () => {
    expect(cpuBaseline([])).toBeUndefined()
    expect(cpuBaseline([['lm', 'fpu']])).toBeUndefined()
    expect(cpuBaseline([flagsOf('qemu64')])?.name).toBe('qemu64')
  })

  it('takes flag arrays as /proc/cpuinfo lists them', () => {
    expect(cpuBaseline([[...flagsOf('SandyBridge')], [...flagsOf('IvyBridge')]])?.name).toBe('SandyBridge')
  })

  it('gives EPYC for the build machine: a Zen 4 guest without ibpb, stibp or pku offers neither EPYC-Rome nor Skylake-Client-IBRS', () => {
    const flags = new Set(BUILD_MACHINE_FLAGS)
    expect(cpuBaseline([flags])?.name).toBe('EPYC')
    expect(missingCpuFlags(findCpuModel('EPYC-Rome')!, flags)).toEqual(['ibpb', 'perfctr_core', 'stibp', 'wbnoinvd'])
    expect(missingCpuFlags(findCpuModel('Skylake-Client-noTSX-IBRS')!, flags)).toEqual(['ibrs'])
    // with an Intel Broadwell host beside it, the group meets at Broadwell-noTSX
    expect(cpuBaseline([flags, flagsOf('Broadwell-noTSX')])?.name).toBe('Broadwell-noTSX')
  })

  it('finds a model this machine can offer, if it is x86-64 Linux', () => {
    const line = existsSync('/proc/cpuinfo') ? /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] : undefined
    const flags = new Set(line?.trim().split(/\s+/) ?? [])
    const expected = flags.has('lm') ? 'a model' : 'none'
    const baseline = cpuBaseline([flags])
    expect(baseline === undefined ? 'none' : 'a model').toBe(expected)
    if (baseline !== undefined) expect(missingCpuFlags(baseline, flags)).toEqual([])
  })
})
