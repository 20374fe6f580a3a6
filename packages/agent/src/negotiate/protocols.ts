import type { meshvirt } from '@meshvirt/proto'

/** Stream protocols of the agent (docs/design.md, "The wire"). */
export const CONTROL_PROTOCOL = '/meshvirt/control/1.0.0'

/**
 * One protocol per concern between hosts; each carries NegotiateRequest bodies of its own kinds.
 * The placement protocol also answers every other kind, for agents of the release before the split
 * (a peer that has not declared the newer protocol is asked there).
 */
/** Placement: Reserve → Reserved / Refused, Commit, Release. */
export const NEGOTIATE_PROTOCOL = '/meshvirt/negotiate/1.0.0'
/** Claims and bindings at the authorities of a key (a VM's name, a network's name, an address). */
export const NAMES_PROTOCOL = '/meshvirt/names/1.0.0'
/** A live migration's destination side: prepare, complete or abort an incoming VM. */
export const MIGRATION_CONTROL_PROTOCOL = '/meshvirt/migrate/control/1.0.0'
/** A VM's replica group: hold, drop, query and promote its replicas. */
export const REPLICA_GROUP_PROTOCOL = '/meshvirt/replica/group/1.0.0'

export type NegotiateKind = NonNullable<meshvirt.v1.NegotiateRequest['body']>

/** The protocol each kind of request belongs to. */
export const PROTOCOL_OF: Readonly<Record<NegotiateKind, string>> = {
  reserve: NEGOTIATE_PROTOCOL,
  commit: NEGOTIATE_PROTOCOL,
  release: NEGOTIATE_PROTOCOL,
  claimName: NAMES_PROTOCOL,
  bindName: NAMES_PROTOCOL,
  prepareIncoming: MIGRATION_CONTROL_PROTOCOL,
  completeIncoming: MIGRATION_CONTROL_PROTOCOL,
  abortIncoming: MIGRATION_CONTROL_PROTOCOL,
  holdReplica: REPLICA_GROUP_PROTOCOL,
  dropReplica: REPLICA_GROUP_PROTOCOL,
  queryReplica: REPLICA_GROUP_PROTOCOL,
  promoteReplica: REPLICA_GROUP_PROTOCOL
}

/** Every protocol a host serves NegotiateRequests on. */
export const PEER_PROTOCOLS: readonly string[] = [...new Set(Object.values(PROTOCOL_OF))]

/** The kind of a request as a caller builds it (the one body it sets), or undefined when it sets none. */
export function kindOf (req: meshvirt.v1.INegotiateRequest): NegotiateKind | undefined {
  return (Object.keys(PROTOCOL_OF) as NegotiateKind[]).find((k) => req[k] != null)
}

/** One round trip on the mesh: Reserve answers in ms; a slow peer is treated as a refusal. */
export const NEGOTIATE_TIMEOUT_MS = 5_000
