import type { HostFilter } from '../host-filter.js'

/** Only alive, active hosts: a suspect host would likely time out the Reserve, a draining one is being emptied. */
export const hostStateFilter: HostFilter = () => (host) => {
  if (host.state !== 'alive') {
    return { hostId: host.id, filter: 'HOST_STATE', reason: `host is ${host.state}`, state: host.state }
  }
  if (host.adminState !== 'active') {
    return { hostId: host.id, filter: 'HOST_STATE', reason: `host is ${host.adminState}`, state: host.adminState }
  }
  return undefined
}
