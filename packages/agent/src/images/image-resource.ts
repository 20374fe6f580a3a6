import type { Logger } from '../log/logger.js'
import type { VmResource } from '../vm/vm-preparation.js'
import type { FetchProgress, ImageFetcher } from './image-fetcher.js'
import type { ImageStore } from './image-store.js'

/** A fetch a VM waited for, as the event stream tells it (`error` when it failed). */
export interface FetchOutcome { digest: string, ref: string, sizeBytes: number, ms: number, vmId: string, error?: string }

/** Progress is logged at most this often per image. */
const PROGRESS_LOG_MS = 5_000

/**
 * A VM's library image as a per-VM resource: before the guest exists on this host — created here,
 * arriving by migration — its base is fetched (from the hosts that hold it) and the VM's disk
 * becomes an overlay on it. A promoted replica brings its own standalone disk and needs none.
 */
export function imageResource (deps: { store: ImageStore, fetcher: ImageFetcher, log: Logger, now?: () => number, fetched?: (f: FetchOutcome) => void }): VmResource {
  const now = deps.now ?? Date.now
  return {
    name: 'image',
    prepare: async (vm, driver) => {
      const digest = vm.spec.boot?.library?.digest ?? ''
      if (digest === '' || vm.origin.kind === 'promotion') return driver
      let logged = 0
      const progress = (p: FetchProgress): void => {
        if (now() - logged < PROGRESS_LOG_MS && p.chunksHeld < p.chunkCount) return
        logged = now()
        deps.log.info('fetching the image of a VM', { vm: vm.id, digest, chunks: `${p.chunksHeld}/${p.chunkCount}`, bytes: p.bytesHeld })
      }
      const ref = vm.spec.boot?.library?.ref ?? ''
      const started = now()
      const had = deps.store.path(digest) !== undefined
      let base: string
      try {
        base = await deps.fetcher.fetch(digest, undefined, progress)
      } catch (err) {
        deps.fetched?.({ digest, ref, sizeBytes: 0, ms: now() - started, vmId: vm.id, error: (err as Error).message })
        throw err
      }
      if (!had) deps.fetched?.({ digest, ref, sizeBytes: deps.store.get(digest)?.manifest.sizeBytes ?? 0, ms: now() - started, vmId: vm.id })
      await deps.store.touch(digest, now())
      return { ...driver, disks: (driver.disks ?? []).map((d) => d.name === 'vda' ? { ...d, base, sharedBase: true } : d) }
    },
    // The base stays in the store (other VMs, later ones); eviction decides when it goes.
    release: () => {}
  }
}
