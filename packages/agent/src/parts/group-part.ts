import { Groups } from '../vm-group/groups.js'
import type { EventDraft } from '../monitor/cluster-event.js'
import type { AgentFeature, FeatureContext } from './feature.js'

/**
 * VM groups as a feature of the agent (vm-group/): the groups book in the advert with the groups
 * this host owns, the `group` commands, and the reconciliation of the groups it owns.
 */
export function groupFeature (ctx: FeatureContext): AgentFeature & { emitTo: (emit: (d: EventDraft) => void) => void } {
  const groups = new Groups({ store: ctx.store, log: ctx.root.child('group', { host: ctx.selfId }), readvertise: () => { ctx.events.emit('features:changed', {}) } })
  return {
    name: 'groups',
    advert: () => groups.advert(),
    keyUser: (key) => groups.keyUser(key),
    attach: ({ view, peers, selfId }) => {
      groups.attach(view, peers, selfId)
      ctx.teardown.add('groups', async () => { await groups.stop() })
    },
    handlers: () => groups.handlers(),
    emitTo: (emit) => { groups.emitTo(emit) }
  }
}
