import { hostname, networkInterfaces } from 'node:os'
import { agentTlsIdentity } from '../access/cluster-identity.js'
import { ApiServer } from '../api/api-server.js'
import { openApiDocument } from '../api/openapi.js'
import { ControlClient } from '../control/control-client.js'
import type { Handler } from '../control/control-handler.js'
import { AGENT_VERSION } from '../host/advert-content.js'
import type { EventDraft } from '../monitor/cluster-event.js'
import type { AccessFeature } from './access-part.js'
import type { HostParts } from './host-parts.js'

/**
 * The HTTPS API (`--api-listen`), a second front end on the control handler: its certificate is
 * signed by the cluster CA at each start, its users are checked by the access feature, and every
 * change made through it is an `api-request` event naming the user (the audit trail).
 */
export async function startApi (p: HostParts, o: { listen: { host: string, port: number }, control: Handler, controlSocket: string, access: AccessFeature, emit: (d: EventDraft) => void }): Promise<ApiServer> {
  const log = p.root.child('api', { host: p.selfId })
  const openapi = openApiDocument(AGENT_VERSION)
  const tls = agentTlsIdentity(o.access.identity, p.selfId, certificateNames(o.listen.host))
  const server = new ApiServer({
    host: o.listen.host,
    port: o.listen.port,
    tls,
    control: o.control,
    authenticate: o.access.authenticate,
    audit: (a) => {
      log.info('API request', a)
      o.emit({ kind: 'api-request', message: `${a.user} (${a.role}): ${a.body}${a.target === '' ? '' : ` ${a.target}`} → ${a.outcome}` })
    },
    openapi: () => openapi,
    attachConsole: async (vm) => await new ControlClient(o.controlSocket).attachConsole(vm),
    hostId: p.selfId,
    log
  })
  await server.start()
  p.teardown.add('API', async () => { await server.stop() })
  log.info('API listening', { url: server.url, caPin: o.access.identity.ca.pin })
  return server
}

/** The names an agent's certificate carries: its hostname, and the addresses it listens on. */
function certificateNames (listenHost: string): { dns: string[], ips: string[] } {
  const any = listenHost === '0.0.0.0' || listenHost === '::'
  const ips = any
    ? Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address.replace(/%.*$/, '')))
    : [listenHost]
  return { dns: [...new Set([hostname(), 'localhost'])], ips: [...new Set(ips)] }
}
