/** Stream protocols of the agent (docs/design.md, "The wire"). */
export const NEGOTIATE_PROTOCOL = '/meshvirt/negotiate/1.0.0'
export const CONTROL_PROTOCOL = '/meshvirt/control/1.0.0'

/** One round trip on the mesh: Reserve answers in ms; a slow peer is treated as a refusal. */
export const NEGOTIATE_TIMEOUT_MS = 5_000
