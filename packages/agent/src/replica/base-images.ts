/**
 * What a replica holder needs of the image library. A full point of a disk that is a thin layer on a
 * library image carries the layer alone (ReplicaDisk.baseDigest); the holder lays the image down
 * first and writes the layer over it. The agent's image library implements it (images/replica-bases.ts).
 */
export interface BaseImages {
  /**
   * Whether the image is here whole. When it is not, its fetch is started (or joined) in the
   * background: `fetching` until it completes; `unavailable` when it cannot be had (no holder, a
   * failed fetch): the owner then sends the disk whole.
   */
  want: (digest: string) => BaseWanted
  /** Writes the image's guest-visible bytes as a raw file `sizeBytes` long at `path` (replacing it). */
  materialize: (digest: string, path: string, sizeBytes: number) => Promise<void>
}

export type BaseWanted =
  | { state: 'ready' }
  | { state: 'fetching', detail: string }
  | { state: 'unavailable', detail: string }
