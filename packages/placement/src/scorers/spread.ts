import type { HostScorer } from '../host-scorer.js'
import { utilisationAfter } from './utilisation.js'

/** Emptiest host first: a smaller blast radius and fewer noisy neighbours per VM. */
export const spreadScorer: HostScorer = {
  name: 'spread',
  prepare: (request) => (_host, free, allocatable) => 1 - utilisationAfter(request.resources, free, allocatable)
}
