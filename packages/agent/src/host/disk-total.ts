import { lstat, readdir } from 'node:fs/promises'
import { join } from 'node:path'

/** Where this agent keeps VM disks and replicas, under its data dir (QEMU driver's vms/, replicas/). */
export const VM_FILE_DIRS = ['vms', 'replicas']
/** Bound on the walk: a data dir holds a few files per VM; more than this is not ours to count. */
export const MAX_WALKED_ENTRIES = 100_000

/**
 * The disk this host can give to VM disks, as the ledger's total: the filesystem's free space
 * plus what the VMs already on it hold — but never more of the latter than the ledger has
 * allocated to them. The total is measured at start-up, when this host's own VM disks already
 * use part of the filesystem; free space alone would count them twice (once as used space,
 * once as the ledger's allocation). Capping by the allocation keeps files the ledger does not
 * know (orphans, extra replica points) counted as used, and keeps thin (qcow2) disks' room to
 * grow to their size: free for new VMs = fsFree + min(held, allocated) − allocated ≤ fsFree.
 */
export function vmDiskTotal (fsFreeBytes: number, vmFilesBytes: number, allocatedDiskBytes: number): number {
  const held = Math.max(0, Math.min(vmFilesBytes, allocatedDiskBytes))
  return Math.max(0, fsFreeBytes) + held
}

/** Bytes the files under `dirs` occupy on disk (allocated blocks: sparse and thin files count as stored). */
export async function bytesOnDisk (dirs: readonly string[], maxEntries = MAX_WALKED_ENTRIES): Promise<number> {
  let total = 0
  let seen = 0
  const walk = async (path: string): Promise<void> => {
    if (++seen > maxEntries) return
    const st = await lstat(path).catch(() => undefined)
    if (st === undefined) return
    if (st.isDirectory()) {
      for (const name of await readdir(path).catch(() => [])) await walk(join(path, name))
    } else if (st.isFile()) {
      total += st.blocks * 512
    }
  }
  for (const dir of dirs) await walk(dir)
  return total
}
