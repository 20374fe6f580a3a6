import { guestConfigResource, type NetworkLookup } from '../guest/guest-config-resource.js'
import type { AgentFeature } from './feature.js'

/** First-boot guest configuration (guest/): each VM with a `guest` in its spec gets a cloud-init NoCloud seed. */
export function guestConfigFeature (networkOf: NetworkLookup): AgentFeature {
  return { name: 'guest-config', vmResources: [guestConfigResource(networkOf)] }
}
