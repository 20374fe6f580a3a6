import { describe, expect, it } from 'vitest'
import { parseCpuinfo } from '../src/host-cpu.js'

const INTEL = `processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz
flags\t\t: sse2 fpu aes vmx
vmx flags\t: vnmi ept
bugs\t\t: spectre_v1

processor\t: 1
model name\t: Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz
flags\t\t: sse2 fpu aes vmx avx512f
`

describe('parseCpuinfo', () => {
  it.each([
    ['x86: the first processor\'s model and flags, sorted; not `vmx flags`', INTEL, 'Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz', ['aes', 'fpu', 'sse2', 'vmx']],
    ['no AES instructions', 'model name\t: QEMU Virtual CPU version 2.5+\nflags\t\t: fpu pni sse4_2\n', 'QEMU Virtual CPU version 2.5+', ['fpu', 'pni', 'sse4_2']],
    ['blanks around the colon and between flags', 'model name:  M \nflags :\t aes  sse2\t\n', 'M', ['aes', 'sse2']],
    ['an empty flags line does not take the next line', 'flags\t\t:\nbugs\t\t: aes\n', '', []],
    ['aarch64 (`Features`, no model name): nothing', 'processor\t: 0\nFeatures\t: fp asimd aes\nCPU implementer\t: 0x41\n', '', []],
    ['no /proc/cpuinfo (off Linux): nothing', '', '', []]
  ])('%s', (_what, cpuinfo, model, flags) => {
    expect(parseCpuinfo(cpuinfo)).toEqual({ model, flags })
  })
})
