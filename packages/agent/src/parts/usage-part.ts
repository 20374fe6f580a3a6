import type { HostLoad } from '@meshvirt/mesh'
import { loadBetween, readHostCounters, type HostCounters } from '../monitor/host-load.js'
import { HISTORY_INTERVAL_MS, UsageHistory } from '../monitor/usage-history.js'
import type { AgentFeature, FeatureContext } from './feature.js'

/**
 * The host's load in its advert (CPU, memory, disk and network rates, sampled from /proc every
 * interval) and the last hour of every host's and VM's use as the gossip tells it (`GET /v1/history`,
 * the console's charts).
 */
export function usageFeature (ctx: FeatureContext, intervalMs = HISTORY_INTERVAL_MS): AgentFeature {
  const history = new UsageHistory(intervalMs)
  let load: HostLoad | undefined
  let last: HostCounters | undefined
  let timer: NodeJS.Timeout | undefined
  return {
    name: 'usage',
    advert: () => (load === undefined ? {} : { load }),
    attach: ({ view }) => {
      const tick = async (): Promise<void> => {
        const now = await readHostCounters()
        if (last !== undefined) {
          load = loadBetween(last, now, ctx.localVms().filter((v) => v.state === 'running').length)
          ctx.events.emit('features:changed', { hint: true })
        }
        last = now
        history.record(view.hosts(), Date.now())
      }
      void tick().catch(() => {})
      timer = setInterval(() => { void tick().catch(() => {}) }, intervalMs)
      timer.unref()
      ctx.teardown.add('usage sampling', () => { clearInterval(timer) })
    },
    handlers: () => ({
      usageHistory: async () => ({ usageHistory: history.toWire() })
    })
  }
}
