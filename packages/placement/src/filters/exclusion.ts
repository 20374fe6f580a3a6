import type { HostFilter } from '../host-filter.js'

/**
 * Hosts the broker rules out (ones that already refused a Reserve, a migration's source) and, for a
 * pinned VM (`VmSpec.host`), every host but the pinned one, matched by peer id or hostname.
 */
export const exclusionFilter: HostFilter = (request) => {
  const excluded = new Set(request.exclude ?? [])
  const pinned = request.host !== undefined && request.host !== '' ? request.host : undefined
  if (excluded.size === 0 && pinned === undefined) return undefined
  return (host) => {
    if (excluded.has(host.id)) return { hostId: host.id, filter: 'EXCLUDED', reason: 'excluded by the request' }
    if (pinned !== undefined && host.id !== pinned && host.hostname !== pinned) {
      return { hostId: host.id, filter: 'EXCLUDED', reason: `VM is pinned to ${pinned}`, detail: pinned }
    }
    return undefined
  }
}
