import type { HostScorer } from '../host-scorer.js'

/**
 * A VM whose disk is a library image: a host that already holds the image scores 1 (the VM starts
 * without a fetch and the bytes stay off the network), one that does not scores 0. A preference,
 * never a filter: any host can fetch the image.
 */
export const imageLocalityScorer: HostScorer = {
  name: 'image-locality',
  prepare: (request) => {
    const image = request.image
    if (image === undefined) return undefined
    return (host) => host.images?.has(image) === true ? 1 : 0
  }
}
