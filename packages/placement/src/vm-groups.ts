/**
 * How many of a host's VMs are in `group`. Own properties only: a group called "constructor" must
 * not find Object.prototype's.
 */
export function groupCount (groups: Readonly<Record<string, number>>, group: string): number {
  if (!Object.hasOwn(groups, group)) return 0
  const n = groups[group]
  return typeof n === 'number' && n > 0 ? n : 0
}
