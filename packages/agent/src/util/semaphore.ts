import { AdaptiveLimit } from './adaptive-limit.js'

/** At most `limit` holders at once; the rest wait in FIFO order: an adaptive limit that never moves. */
export class Semaphore extends AdaptiveLimit {
  constructor (limit: number) {
    super({ min: limit, max: limit, cooldownMs: 0 })
  }
}
