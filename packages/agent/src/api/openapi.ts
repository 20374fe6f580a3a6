import { REQUIRED_ROLE } from '../access/roles.js'
import { API_ROUTES } from './api-routes.js'

/** Routes outside the table: health (no token), the generic control route, this document. */
export const FIXED_ROUTES = [
  { method: 'GET', path: '/v1/health', operationId: 'health', summary: 'is this agent up (no token needed)', role: undefined },
  { method: 'GET', path: '/', operationId: 'console', summary: 'the management console (a page without data: it asks for a token, then calls these routes)', role: undefined },
  { method: 'GET', path: '/v1/vms/{name}/console/attach', operationId: 'attachConsole', summary: 'a VM\'s serial console, read-write, as a WebSocket (subprotocols: meshvirt-console and the token); operator', role: 'operator' },
  { method: 'GET', path: '/v1/openapi.json', operationId: 'openapi', summary: 'this document', role: 'viewer' },
  { method: 'POST', path: '/v1/control', operationId: 'control', summary: 'any request the API offers, as protobuf JSON (ControlRequest → ControlResponse): the CLI\'s remote transport; the role is the request body\'s', role: 'viewer' }
] as const

const ERROR = { description: 'error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } }

/**
 * The API's OpenAPI 3.0 document, generated from the route table the server routes with — so the
 * document and the handlers cannot drift; api-routes.spec checks each path answers.
 */
export function openApiDocument (version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {}
  const add = (method: string, path: string, op: Record<string, unknown>): void => {
    paths[path] ??= {}
    ;(paths[path] as Record<string, unknown>)[method.toLowerCase()] = op
  }
  for (const r of API_ROUTES) {
    const params = [...r.path.matchAll(/\{([^}]+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }))
    add(r.method, r.path, {
      operationId: r.body,
      summary: r.summary,
      'x-meshvirt-role': REQUIRED_ROLE[r.body],
      ...(params.length > 0 ? { parameters: params } : {}),
      ...(r.method === 'POST' ? { requestBody: { required: false, content: { 'application/json': { schema: { type: 'object', description: `fields of ${r.body} (protobuf JSON names)` } } } } } : {}),
      responses: { 200: { description: `ControlResponse JSON (${r.body}'s answer)` }, 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR }
    })
  }
  for (const r of FIXED_ROUTES) {
    add(r.method, r.path, {
      operationId: r.operationId,
      summary: r.summary,
      ...(r.role === undefined ? { security: [] } : { 'x-meshvirt-role': r.role }),
      responses: { 200: { description: 'ok' }, ...(r.role === undefined ? {} : { 401: ERROR, 403: ERROR }) }
    })
  }
  return {
    openapi: '3.0.3',
    info: { title: 'meshvirt agent API', version, description: 'Any agent answers any request. Authenticate with `Authorization: Bearer <token>` (`meshvirt user add`); roles: viewer < operator < admin.' },
    components: {
      securitySchemes: { token: { type: 'http', scheme: 'bearer' } },
      schemas: { Error: { type: 'object', properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } } } } }
    },
    security: [{ token: [] }],
    paths
  }
}
