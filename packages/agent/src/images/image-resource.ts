import type { meshvirt } from '@meshvirt/proto'
import type { Logger } from '../log/logger.js'
import type { VmResource } from '../vm/vm-preparation.js'
import type { FetchProgress, ImageFetcher } from './image-fetcher.js'
import type { ImageStore } from './image-store.js'

/** A fetch a VM waited for, as the event stream tells it (`error` when it failed). */
export interface FetchOutcome {
  digest: string
  ref: string
  sizeBytes: number
  ms: number
  vmId: string
  error?: string
  /** A copy here repaired: this many chunks were found damaged on disk and fetched again. */
  repairedChunks?: number
}

/** A VM's library image as a per-VM resource, and how far the fetches VMs wait for have come. */
export interface ImageResource extends VmResource {
  /** The fetch `vmId` waits for on this host (`vm show`, `vm create`'s progress); undefined: none. */
  progressOf: (vmId: string) => meshvirt.v1.IImageFetchProgress | undefined
}

/** Progress is logged at most this often per image. */
const PROGRESS_LOG_MS = 5_000

/**
 * A VM's library image as a per-VM resource: before the guest exists on this host — created here,
 * arriving by migration — its base is fetched (from the hosts that hold it) and the VM's disk
 * becomes an overlay on it. A promoted replica brings its own standalone disk and needs none.
 * The fetcher is asked for at each prepare (it exists once the mesh runs).
 */
export function imageResource (deps: { store: ImageStore, fetcher: () => ImageFetcher, log: Logger, now?: () => number, fetched?: (f: FetchOutcome) => void }): ImageResource {
  const now = deps.now ?? Date.now
  const waiting = new Map<string, { ref: string, digest: string, startedAtMs: number }>()
  return {
    name: 'image',
    prepare: async (vm, driver) => {
      const digest = vm.spec.boot.library?.digest ?? ''
      if (digest === '' || vm.origin.kind === 'promotion') return driver
      let logged = 0
      const progress = (p: FetchProgress): void => {
        if (now() - logged < PROGRESS_LOG_MS && p.chunksHeld < p.chunkCount) return
        logged = now()
        deps.log.info('fetching the image of a VM', { vm: vm.id, digest, chunks: `${p.chunksHeld}/${p.chunkCount}`, bytes: p.bytesHeld })
      }
      const ref = vm.spec.boot.library?.ref ?? ''
      const started = now()
      const had = deps.store.path(digest) !== undefined
      let base: string
      if (!had) waiting.set(vm.id, { ref, digest, startedAtMs: started })
      try {
        base = await deps.fetcher().fetch(digest, undefined, progress)
      } catch (err) {
        deps.fetched?.({ digest, ref, sizeBytes: 0, ms: now() - started, vmId: vm.id, error: (err as Error).message })
        // A migration need not fail for it: the disk is laid down whole, and the source mirrors it
        // whole (MigrationDestination tells it which disks). A new VM has no layer to move: it fails.
        if (vm.origin.kind === 'incoming') {
          deps.log.warn('the image of an arriving VM could not be fetched: its disk is copied whole instead', { vm: vm.id, digest, err: (err as Error).message })
          return driver
        }
        throw err
      } finally {
        waiting.delete(vm.id)
      }
      if (!had) deps.fetched?.({ digest, ref, sizeBytes: deps.store.get(digest)?.manifest.sizeBytes ?? 0, ms: now() - started, vmId: vm.id })
      await deps.store.touch(digest, now())
      return { ...driver, disks: (driver.disks ?? []).map((d) => d.name === 'vda' ? { ...d, base, sharedBase: true } : d) }
    },
    // The base stays in the store (other VMs, later ones); eviction decides when it goes.
    release: () => {},
    // Read from the store, not the fetch's callback: the fetch may be one the library started for a
    // copy, which this VM joined.
    progressOf: (vmId) => {
      const w = waiting.get(vmId)
      if (w === undefined) return undefined
      const img = deps.store.get(w.digest)
      const sizeBytes = img?.manifest.sizeBytes ?? 0
      const chunkCount = img?.have.count ?? 0
      const chunksHeld = img?.have.held() ?? 0
      // Every chunk is chunkBytes long but the last; count the last one's own length when it is held.
      const chunk = img?.manifest.chunkBytes ?? 0
      const lastHeld = chunkCount > 0 && img?.have.has(chunkCount - 1) === true
      const bytesHeld = lastHeld ? (chunksHeld - 1) * chunk + (sizeBytes - (chunkCount - 1) * chunk) : chunksHeld * chunk
      return { ref: w.ref, digest: w.digest, chunksHeld, chunkCount, bytesHeld, sizeBytes, startedAtMs: w.startedAtMs }
    }
  }
}
