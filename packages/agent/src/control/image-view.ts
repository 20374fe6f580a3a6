import type { meshvirt } from '@meshvirt/proto'

/** An image as `image ls|show|import --json` print it: the library's entry, every holder, its users. */
export interface ImageView {
  ref: string
  digest: string
  sizeBytes: number
  format: string
  chunkCount: number
  holders: Array<{ hostId: string, hostname: string, chunksHeld: number, alive: boolean }>
  usedBy: string[]
  imported: boolean
}

export function imageView (w: meshvirt.v1.IImageInfo): ImageView {
  return {
    ref: w.ref ?? '',
    digest: w.digest ?? '',
    sizeBytes: Number(w.sizeBytes ?? 0),
    format: w.format ?? '',
    chunkCount: w.chunkCount ?? 0,
    holders: (w.holders ?? []).map((h) => ({ hostId: h.hostId ?? '', hostname: h.hostname ?? '', chunksHeld: h.chunksHeld ?? 0, alive: h.alive === true })),
    usedBy: w.usedBy ?? [],
    imported: w.imported === true
  }
}
