/**
 * The guest RAM size QEMU is given: the spec's memory plus one 4 KiB page.
 *
 * Why the page: QEMU before 9.0 (Debian 12 ships 7.2) loses guest writes in live migrations under
 * TCG. Its dirty-bitmap sync has a fast path, taken for a RAM block whose size is a multiple of 64
 * pages (256 KiB), that clears the block's dirty bits without re-arming TCG's write tracking in the
 * vCPUs' TLBs; a store through a TLB entry cached before the sync is then never marked dirty, and
 * the destination keeps an older copy of the page (fixed upstream in 03bfc2188f, "physmem: Fix
 * migration dirty bitmap coherency with TCG memory access"). Measured here: 4 of 190 tunnelled
 * migrations of an idle 128 MiB guest left pages on the destination that differed from the paused
 * source's (jiffies and timer-wheel words ~100 ms old), and one guest died of it (GPF in the
 * allocator, then its panic reboot). A RAM block one page off the 256 KiB grid takes QEMU's per-page
 * path, which re-arms the tracking.
 *
 * KVM tracks dirty pages in the kernel and does not need it; the page is added under every
 * accelerator all the same, so that both ends of a migration always build the same machine.
 */
export const GUEST_RAM_EXTRA_KIB = 4

/** `-m` for a VM of `memoryMiB` (see above). */
export function qemuMemoryArg (memoryMiB: number): string {
  return `${memoryMiB * 1024 + GUEST_RAM_EXTRA_KIB}k`
}
