import { join } from 'node:path'
import { IMAGE_STORE_DIR, ImageSources } from '@meshvirt/hypervisor'
import { underlayAddress } from '../host/underlay.js'
import { Images } from '../images/images.js'
import { ReplicaRecords } from '../store/replica-records.js'
import type { AgentFeature, FeatureContext } from './feature.js'

/**
 * The image library as a feature of the agent (images/): the store in the data dir, its holdings in
 * the advert, the fetch protocol, a VM's base image as a per-VM resource, the name resolved to a
 * digest before placement, the `image` commands, and the base images of replicas held here.
 */
export async function imageFeature (ctx: FeatureContext): Promise<AgentFeature> {
  const log = ctx.root.child('images', { host: ctx.selfId })
  const held = new ReplicaRecords(ctx.store)
  const images = new Images({
    dir: join(ctx.config.dataDir, IMAGE_STORE_DIR),
    sources: new ImageSources({ imageDirs: ctx.config.imageDirs, dataDir: ctx.config.dataDir, secrets: [ctx.config.clusterKeyFile] }),
    bandwidth: ctx.config.imageBandwidth,
    directAddress: underlayAddress(ctx.config),
    localVms: ctx.localVms,
    heldSpecs: () => held.listHeld(),
    copies: ctx.config.imageCopies,
    cacheBytes: ctx.config.imageCacheBytes,
    readvertise: () => { ctx.events.emit('features:changed', {}) },
    fetched: (f) => { ctx.events.emit('image:fetched', f) },
    log
  })
  await images.load()
  return {
    name: 'images',
    vmResources: [images.resource],
    vmDetail: (vm) => ({ imageFetch: images.resource.progressOf(vm.id) ?? null }),
    advert: () => images.advert(),
    keyUser: (key) => images.keyUser(key),
    attach: async (mesh) => {
      await images.attach(mesh)
      ctx.teardown.add('images', async () => { await images.stop(mesh.node) })
    },
    specClaims: () => images.claims,
    replicaBases: images.bases,
    handlers: () => images.handlers()
  }
}
