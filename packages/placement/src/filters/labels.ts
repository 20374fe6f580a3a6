import type { HostFilter } from '../host-filter.js'
import type { LabelConstraint } from '../placement-request.js'

/** `zone=a`, `zone!=b`, `gpu`, `!gpu` — the shape an operator reads in a rejection. */
export function formatConstraint (c: LabelConstraint): string {
  switch (c.op) {
    case 'eq': return `${c.key}=${c.value ?? ''}`
    case 'ne': return `${c.key}!=${c.value ?? ''}`
    case 'exists': return c.key
    case 'notExists': return `!${c.key}`
  }
}

/** As Nomad's `!=`: a host without the label is "not equal" and passes. */
export function labelMatches (labels: Readonly<Record<string, string>>, c: LabelConstraint): boolean {
  const value = Object.hasOwn(labels, c.key) ? labels[c.key] : undefined
  switch (c.op) {
    case 'eq': return value === (c.value ?? '')
    case 'ne': return value !== (c.value ?? '')
    case 'exists': return value !== undefined
    case 'notExists': return value === undefined
  }
}

export const labelFilter: HostFilter = (request) => {
  const constraints = request.constraints ?? []
  if (constraints.length === 0) return undefined
  return (host) => {
    for (const c of constraints) {
      if (!labelMatches(host.labels, c)) {
        const has = host.labels[c.key]
        return {
          hostId: host.id,
          filter: 'LABELS',
          reason: `does not match ${formatConstraint(c)} (${c.key} is ${has === undefined ? 'unset' : has})`,
          detail: formatConstraint(c)
        }
      }
    }
    return undefined
  }
}
