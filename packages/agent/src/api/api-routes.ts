import { ControlError } from '../control/errors.js'

type Json = Record<string, unknown>

/** What a route is given: its path parameters, the query string and the JSON body (`{}` when none). */
export interface RouteInput {
  params: Record<string, string>
  query: URLSearchParams
  json: Json
}

/** One REST route of the API: a shape over one control request body. */
export interface ApiRoute {
  method: 'GET' | 'POST' | 'DELETE'
  /** With `{param}` segments, e.g. `/v1/vms/{name}`. */
  path: string
  /** The control request body it makes (roles.ts says who may send it). */
  body: string
  summary: string
  /** The body's fields. */
  request: (input: RouteInput) => Json
}

const vm = (p: RouteInput): Json => ({ vm: { name: p.params.name } })
const num = (q: URLSearchParams, key: string): number | undefined => {
  const v = q.get(key)
  if (v === null) return undefined
  const n = Number(v)
  if (!Number.isInteger(n) || n < 0) throw new ControlError('INVALID_ARGUMENT', `query parameter ${key} must be a non-negative integer, not '${v}'`)
  return n
}
const flag = (q: URLSearchParams, key: string): boolean => q.get(key) === 'true' || q.get(key) === '1'

/**
 * The REST face of the API: each route one control request, answered by the same handler as the
 * control socket (so `meshvirt --endpoint` and a script see the same results). `POST /v1/control`
 * takes any request the API offers, in its protobuf JSON form: the CLI's remote transport.
 */
export const API_ROUTES: readonly ApiRoute[] = [
  { method: 'GET', path: '/v1/vms', body: 'listVms', summary: 'every VM of the cluster', request: () => ({}) },
  { method: 'POST', path: '/v1/vms', body: 'createVm', summary: 'create a VM (body: a VmSpec); placed by negotiation', request: (p) => ({ spec: p.json }) },
  { method: 'GET', path: '/v1/vms/{name}', body: 'inspectVm', summary: 'one VM', request: vm },
  { method: 'DELETE', path: '/v1/vms/{name}', body: 'deleteVm', summary: 'delete a VM (?force=true: its owner is gone)', request: (p) => ({ ...vm(p), force: flag(p.query, 'force') }) },
  { method: 'POST', path: '/v1/vms/{name}/start', body: 'startVm', summary: 'start a VM', request: vm },
  { method: 'POST', path: '/v1/vms/{name}/stop', body: 'stopVm', summary: 'stop a VM (body: force, timeoutMs)', request: (p) => ({ ...p.json, ...vm(p) }) },
  { method: 'POST', path: '/v1/vms/{name}/migrate', body: 'migrateVm', summary: 'live-migrate a VM (body: toHost, params)', request: (p) => ({ ...p.json, ...vm(p) }) },
  { method: 'POST', path: '/v1/vms/{name}/resize', body: 'resizeVm', summary: 'resize a VM (body: vcpus, memoryBytes, diskBytes, restart)', request: (p) => ({ ...p.json, ...vm(p) }) },
  { method: 'POST', path: '/v1/vms/{name}/replicas', body: 'replicateVm', summary: 'set a VM\'s replicas (body: replicas, rpoMs, spreadBy)', request: (p) => ({ ...p.json, ...vm(p) }) },
  { method: 'GET', path: '/v1/vms/{name}/console', body: 'readConsole', summary: 'read a VM\'s serial console (?offset=, ?maxBytes=)', request: (p) => ({ ...vm(p), offset: num(p.query, 'offset'), maxBytes: num(p.query, 'maxBytes') }) },
  { method: 'GET', path: '/v1/hosts', body: 'listHosts', summary: 'every host of the cluster', request: () => ({}) },
  { method: 'GET', path: '/v1/history', body: 'usageHistory', summary: 'the last hour of every host\'s and VM\'s use (CPU, memory; disk and network per host), from the gossip', request: () => ({}) },
  { method: 'POST', path: '/v1/hosts/{host}/drain', body: 'drainHost', summary: 'drain a host (body: undrain, concurrency)', request: (p) => ({ ...p.json, host: p.params.host }) },
  { method: 'GET', path: '/v1/networks', body: 'listNetworks', summary: 'every network', request: () => ({}) },
  { method: 'POST', path: '/v1/networks', body: 'createNetwork', summary: 'create a network (body: name, subnet, gateway, mtu, nat, noDhcp)', request: (p) => p.json },
  { method: 'GET', path: '/v1/networks/{name}', body: 'inspectNetwork', summary: 'one network and its ports', request: (p) => ({ name: p.params.name }) },
  { method: 'DELETE', path: '/v1/networks/{name}', body: 'deleteNetwork', summary: 'delete a network', request: (p) => ({ name: p.params.name }) },
  { method: 'GET', path: '/v1/images', body: 'listImages', summary: 'the image library', request: () => ({}) },
  { method: 'GET', path: '/v1/images/{ref}', body: 'inspectImage', summary: 'one image and its holders', request: (p) => ({ ref: p.params.ref }) },
  { method: 'DELETE', path: '/v1/images/{ref}', body: 'removeImage', summary: 'remove an image from the library', request: (p) => ({ ref: p.params.ref }) },
  { method: 'GET', path: '/v1/groups', body: 'listGroups', summary: 'every VM group', request: () => ({}) },
  { method: 'POST', path: '/v1/groups', body: 'createGroup', summary: 'create a group (body: name, count, template)', request: (p) => p.json },
  { method: 'GET', path: '/v1/groups/{name}', body: 'inspectGroup', summary: 'one group and its members', request: (p) => ({ name: p.params.name }) },
  { method: 'POST', path: '/v1/groups/{name}/scale', body: 'scaleGroup', summary: 'scale a group (body: count)', request: (p) => ({ ...p.json, name: p.params.name }) },
  { method: 'DELETE', path: '/v1/groups/{name}', body: 'deleteGroup', summary: 'delete a group and its members', request: (p) => ({ name: p.params.name }) },
  { method: 'GET', path: '/v1/events', body: 'listEvents', summary: 'cluster events (?after=CURSOR, ?vm=, ?limit=, ?waitMs= to wait for a newer one)', request: (p) => ({ afterCursor: num(p.query, 'after'), vm: p.query.get('vm') ?? undefined, limit: num(p.query, 'limit'), waitMs: num(p.query, 'waitMs') }) },
  { method: 'POST', path: '/v1/users', body: 'addUser', summary: 'issue a user token (body: name, role, expiresInMs)', request: (p) => p.json },
  { method: 'DELETE', path: '/v1/users/{name}', body: 'revokeUser', summary: 'revoke every token of a user, at every agent', request: (p) => ({ name: p.params.name }) }
]

/** The route of a request and its path parameters, or undefined (404); a known path with another method is a 405. */
export function matchRoute (method: string, pathname: string): { route: ApiRoute, params: Record<string, string> } | { allowed: string[] } | undefined {
  const allowed: string[] = []
  for (const route of API_ROUTES) {
    const params = matchPath(route.path, pathname)
    if (params === undefined) continue
    if (route.method === method) return { route, params }
    allowed.push(route.method)
  }
  return allowed.length > 0 ? { allowed } : undefined
}

function matchPath (pattern: string, pathname: string): Record<string, string> | undefined {
  const want = pattern.split('/')
  const got = pathname.split('/')
  if (want.length !== got.length) return undefined
  const params: Record<string, string> = {}
  for (const [i, w] of want.entries()) {
    const g = got[i] as string
    if (w.startsWith('{')) {
      if (g === '') return undefined
      try {
        params[w.slice(1, -1)] = decodeURIComponent(g)
      } catch {
        return undefined
      }
    } else if (w !== g) return undefined
  }
  return params
}
