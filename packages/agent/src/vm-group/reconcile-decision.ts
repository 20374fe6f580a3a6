import { memberName } from './group-names.js'

/** What the group's owner sees of one member when it reconciles. */
export interface ObservedMember {
  /** The member's stable index (`NAME-index`). */
  index: number
  /**
   * `present`: the VM exists on a live host (running, stopped or being created).
   * `lost`: its host is dead and no replica can bring it back, so it must be re-created.
   * `deleting`: a delete of it is under way; it counts for nothing.
   */
  state: 'present' | 'lost' | 'deleting'
}

export interface ReconcileDecision {
  /** Members to create, by name and index, lowest index first. */
  create: Array<{ index: number, name: string }>
  /** Members to delete, by name and index, highest (newest) index first. */
  delete: Array<{ index: number, name: string }>
}

/**
 * Desired count vs observed members → the creates and deletes that bring the group to its count.
 *
 * Scaling in removes the highest indexes (the newest) of the present members. Creates take the
 * lowest free indexes, so a lost member is re-created under its own index (indexes are stable:
 * `web-2` stays `web-2` wherever it lives) unless the group was scaled in past it. `maxCreates` bounds one round's creates so a big scale-out is spread over
 * rounds (each create is a placement negotiation).
 */
export function decideReconcile (group: string, desired: number, observed: readonly ObservedMember[], maxCreates = Infinity): ReconcileDecision {
  const present = [...new Set(observed.filter(m => m.state === 'present').map(m => m.index))].sort((a, b) => a - b)
  const taken = new Set(observed.filter(m => m.state !== 'lost').map(m => m.index))
  const keep = present.slice(0, desired)
  const drop = present.slice(desired).reverse()
  const create: number[] = []
  // A lost member's index is free again, so it is re-created under its own name when it is among
  // the lowest free indexes (the common case: one host died, its members come back as themselves).
  for (let index = 1; keep.length + create.length < desired; index++) {
    if (!taken.has(index)) create.push(index)
  }
  return {
    create: create.slice(0, Math.max(0, maxCreates)).map(index => ({ index, name: memberName(group, index) })),
    delete: drop.map(index => ({ index, name: memberName(group, index) }))
  }
}
