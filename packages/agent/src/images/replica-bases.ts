import { writeRawImage } from '@meshvirt/hypervisor'
import type { Logger } from '../log/logger.js'
import type { BaseImages, BaseWanted } from '../replica/base-images.js'
import type { ImageFetcher } from './image-fetcher.js'
import type { ImageStore } from './image-store.js'

/** A failed fetch is reported as `unavailable` for this long; then a new offer tries again. */
export const FAILED_FOR_MS = 60_000

/**
 * The image library as a replica holder's source of base images: a full point of a VM on a library
 * image is the VM's layer alone, and the holder starts from its own copy of the image — fetched from
 * the hosts that hold it, as a VM's base is, when it is not here yet.
 */
export function replicaBases (deps: { store: ImageStore, fetcher: () => ImageFetcher | undefined, log: Logger, now?: () => number }): BaseImages {
  const now = deps.now ?? Date.now
  const fetching = new Set<string>()
  const failed = new Map<string, { at: number, why: string }>()
  return {
    want: (digest): BaseWanted => {
      if (deps.store.path(digest) !== undefined) return { state: 'ready' }
      const f = failed.get(digest)
      if (f !== undefined && now() - f.at < FAILED_FOR_MS) return { state: 'unavailable', detail: f.why }
      const img = deps.store.get(digest)
      const progress = img === undefined ? 'starting' : `${img.have.held()} of ${img.have.count} chunks`
      if (fetching.has(digest)) return { state: 'fetching', detail: progress }
      const fetcher = deps.fetcher()
      if (fetcher === undefined) return { state: 'unavailable', detail: 'the image library is not attached to the mesh yet' }
      failed.delete(digest)
      fetching.add(digest)
      deps.log.info('fetching the base image of a replica held here', { digest })
      void fetcher.fetch(digest).then(
        () => { deps.log.info('base image of a replica fetched', { digest }) },
        (err: unknown) => {
          failed.set(digest, { at: now(), why: (err as Error).message })
          deps.log.warn('could not fetch the base image of a replica held here: its owner will send whole disks', { digest, err: (err as Error).message })
        }
      ).finally(() => { fetching.delete(digest) })
      return { state: 'fetching', detail: progress }
    },
    materialize: async (digest, path, sizeBytes) => {
      const source = deps.store.path(digest)
      const img = deps.store.get(digest)
      if (source === undefined || img === undefined) throw new Error(`base image ${digest} is not on this host (evicted?): the replica's point cannot be applied`)
      await writeRawImage(source, { format: img.manifest.format, target: path, sizeBytes })
      await deps.store.touch(digest, now())
    }
  }
}
