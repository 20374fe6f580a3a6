/**
 * The three roles of the API, each including the one before: a viewer reads, an operator also
 * acts on VMs and groups, an admin also manages hosts, networks, images and users.
 */
export const ROLES = ['viewer', 'operator', 'admin'] as const
export type Role = typeof ROLES[number]

export function isRole (text: string): text is Role {
  return (ROLES as readonly string[]).includes(text)
}

export function roleAllows (held: Role, needed: Role): boolean {
  return ROLES.indexOf(held) >= ROLES.indexOf(needed)
}

/**
 * The role each control request needs when it comes through the API, by the request's body (its
 * oneof name). A body not listed is not offered remotely at all: the requests hosts send each other
 * (tombstones, image holds) and the console stream, which the API does not carry yet.
 */
export const REQUIRED_ROLE: Readonly<Record<string, Role>> = Object.freeze({
  listVms: 'viewer',
  inspectVm: 'viewer',
  listHosts: 'viewer',
  listNetworks: 'viewer',
  inspectNetwork: 'viewer',
  listImages: 'viewer',
  inspectImage: 'viewer',
  listEvents: 'viewer',
  listGroups: 'viewer',
  inspectGroup: 'viewer',
  usageHistory: 'viewer',
  createVm: 'operator',
  startVm: 'operator',
  stopVm: 'operator',
  deleteVm: 'operator',
  migrateVm: 'operator',
  replicateVm: 'operator',
  failoverVm: 'operator',
  resizeVm: 'operator',
  readConsole: 'operator',
  createGroup: 'operator',
  scaleGroup: 'operator',
  deleteGroup: 'operator',
  drainHost: 'admin',
  clusterBalance: 'admin',
  createNetwork: 'admin',
  deleteNetwork: 'admin',
  importImage: 'admin',
  removeImage: 'admin',
  addUser: 'admin',
  revokeUser: 'admin'
})

/** Requests that read, whatever role they need (a console's output is an operator's to read). */
const READS = new Set(['readConsole'])

/** Whether a request body changes something (an audit event names who asked). */
export function isMutating (body: string): boolean {
  const role = REQUIRED_ROLE[body]
  return role !== undefined && role !== 'viewer' && !READS.has(body)
}
