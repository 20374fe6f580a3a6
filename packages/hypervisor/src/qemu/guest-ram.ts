/**
 * The guest RAM size QEMU is given: under TCG the spec's memory plus one 4 KiB page.
 *
 * Why the page: QEMU before 9.0 (Debian 12 ships 7.2) loses guest writes in live migrations under
 * TCG. Its dirty-bitmap sync has a fast path, taken for a RAM block whose size is a multiple of 64
 * pages (256 KiB), that clears the block's dirty bits without re-arming TCG's write tracking in the
 * vCPUs' TLBs; a store through a TLB entry cached before the sync is then never marked dirty, and
 * the destination keeps an older copy of the page (fixed upstream in 03bfc2188f, "physmem: Fix
 * migration dirty bitmap coherency with TCG memory access"). Measured here, idle 128 MiB guest:
 * with default parameters 4 of 690 migrations (tunnelled or direct; all 4 in the first 350) left
 * pages on the destination that differed from the paused source's (jiffies and timer-wheel words,
 * ~100 ms old), and one guest in 300 died of it (GPF in the allocator, panic, reboot); with a slow
 * first pass (20 MB/s) 7 of 10 did. A RAM block off that grid takes QEMU's per-page path, which
 * re-arms the tracking: 0 of 27 with the page (QEMU rounds RAM to 8 KiB: the block is 8 KiB over).
 *
 * Under KVM the kernel tracks dirty pages, the fast path is right and worth keeping: the per-page
 * path costs every sync, the one inside the downtime included (bench migration, 256 MiB guest,
 * before → after the page: total 437 → 753 ms through the tunnel, 218 → 315 ms direct TCP; pause
 * median 16 → 34 ms through the tunnel, part of it run-to-run spread). So KVM guests get the spec's
 * RAM exactly; a KVM ↔ TCG migration fails anyway (docs/design.md), now at once on the RAM size.
 */
import { MEMORY_SLOTS } from '../constants.js'
import { bootMemoryMiB, maxMemoryMiB } from '../memory-layout.js'
import type { Accelerator, VmSpec } from '../types.js'

export const TCG_GUEST_RAM_EXTRA_KIB = 4

/** `-m` for a VM of `memoryMiB` under `accel` (see above). */
export function qemuMemoryArg (memoryMiB: number, accel: Accelerator): string {
  return accel === 'tcg' ? `${memoryMiB * 1024 + TCG_GUEST_RAM_EXTRA_KIB}k` : String(memoryMiB)
}

/**
 * QEMU's memory options for a VM: boot RAM, with room to grow (`slots`, `maxmem`) when it has some,
 * and one DIMM per piece added while it ran (ids `dimm<i>`: a migration's two sides build the same machine).
 */
export function memoryArgv (spec: Pick<VmSpec, 'memoryMiB' | 'memoryDimmsMiB' | 'maxMemoryMiB'>, accel: Accelerator): string[] {
  const ram = qemuMemoryArg(bootMemoryMiB(spec), accel)
  const argv = ['-m', spec.maxMemoryMiB !== undefined ? `${ram},slots=${MEMORY_SLOTS},maxmem=${maxMemoryMiB(spec)}M` : ram]
  ;(spec.memoryDimmsMiB ?? []).forEach((mib, i) => {
    argv.push('-object', `memory-backend-ram,id=dimm${i}-ram,size=${mib}M`, '-device', `pc-dimm,id=dimm${i},memdev=dimm${i}-ram`)
  })
  return argv
}
