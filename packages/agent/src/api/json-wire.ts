import { pb, type meshvirt } from '@meshvirt/proto'
import { REQUIRED_ROLE } from '../access/roles.js'
import { ControlError } from '../control/errors.js'

/** The request bodies the API offers (of ControlRequest's oneof), by name. */
export const REQUEST_BODIES: readonly string[] = Object.keys(REQUIRED_ROLE)

/**
 * ControlRequest from the JSON the API takes (protobuf's JSON names: camelCase, enums by name,
 * 64-bit numbers as numbers, bytes as base64): exactly one body, its fields checked by protobufjs.
 */
export function requestFromJson (json: unknown): meshvirt.v1.ControlRequest {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ControlError('INVALID_ARGUMENT', 'the request must be a JSON object')
  const bodies = Object.keys(json).filter((k) => REQUEST_BODIES.includes(k))
  if (bodies.length !== 1) throw new ControlError('INVALID_ARGUMENT', `the request must have exactly one of the API's request bodies (${REQUEST_BODIES.join(', ')}) (it has ${bodies.length === 0 ? 'none' : bodies.join(', ')})`)
  const unknown = Object.keys(json).filter((k) => !REQUEST_BODIES.includes(k) && k !== 'idempotencyKey')
  if (unknown.length > 0) throw new ControlError('INVALID_ARGUMENT', `unknown field(s) ${unknown.join(', ')}`)
  try {
    return pb.ControlRequest.fromObject(json)
  } catch (err) {
    throw new ControlError('INVALID_ARGUMENT', `bad request: ${(err as Error).message.replace(/^\.?meshvirt\.v1\./, '')}`)
  }
}

const TO_JSON = { longs: Number, enums: String, bytes: String, defaults: false, arrays: true } as const

/** A control answer as the API sends it. */
export function responseToJson (res: meshvirt.v1.IControlResponse): Record<string, unknown> {
  return pb.ControlResponse.toObject(pb.ControlResponse.fromObject(res), TO_JSON)
}

/** What a client makes of the API's JSON: the same ControlResponse the control socket gives. */
export function responseFromJson (json: unknown): meshvirt.v1.ControlResponse {
  return pb.ControlResponse.fromObject(json as Record<string, unknown>)
}
