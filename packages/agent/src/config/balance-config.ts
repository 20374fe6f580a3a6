import type { BalanceKnobs } from '../balance/balance-knobs.js'
import { ConfigError } from './errors.js'

/**
 * The rebalancing knobs an operator may set in the config file (`"balance": {…}`); unset ones keep
 * their defaults (balance/balance-knobs.ts). Utilisations are fractions (0.05 = 5 points).
 */
export interface BalanceConfigInput {
  /** Act when this host's utilisation exceeds the cluster mean by more than this (default 0.05). */
  threshold?: number | string
  /** Make a move only if it lowers the spread (CV) by at least this (default 0.02). */
  margin?: number | string
  /** CPU's share of a host's utilisation, memory the rest (default 0.5). */
  cpuWeight?: number | string
  /** Seconds between balance rounds (default 30). */
  intervalS?: number | string
  /** Seconds above the threshold before acting (default 120). */
  holdS?: number | string
  /** Seconds after a move before the next (default 120). */
  cooldownS?: number | string
}

const KEYS = ['threshold', 'margin', 'cpuWeight', 'intervalS', 'holdS', 'cooldownS']

export function parseBalanceConfig (input: BalanceConfigInput | undefined): Partial<BalanceKnobs> {
  if (input === undefined) return {}
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new ConfigError('balance: expected an object of knobs')
  for (const key of Object.keys(input)) {
    if (!KEYS.includes(key)) throw new ConfigError(`balance: unknown knob '${key}' (known: ${KEYS.join(', ')})`)
  }
  const out: Partial<BalanceKnobs> = {}
  const fraction = (v: number | string | undefined, what: string, min: number): number | undefined => v === undefined ? undefined : inRange(v, `balance.${what}`, min, 1)
  const seconds = (v: number | string | undefined, what: string, min: number): number | undefined => v === undefined ? undefined : inRange(v, `balance.${what} (seconds)`, min, 86_400) * 1000
  const threshold = fraction(input.threshold, 'threshold', 0.001)
  const margin = fraction(input.margin, 'margin', 0)
  const cpuWeight = fraction(input.cpuWeight, 'cpuWeight', 0)
  const intervalMs = seconds(input.intervalS, 'intervalS', 1)
  const holdMs = seconds(input.holdS, 'holdS', 0)
  const cooldownMs = seconds(input.cooldownS, 'cooldownS', 0)
  if (threshold !== undefined) out.threshold = threshold
  if (margin !== undefined) out.margin = margin
  if (cpuWeight !== undefined) out.cpuWeight = cpuWeight
  if (intervalMs !== undefined) out.intervalMs = intervalMs
  if (holdMs !== undefined) out.holdMs = holdMs
  if (cooldownMs !== undefined) out.cooldownMs = cooldownMs
  return out
}

function inRange (value: number | string, what: string, min: number, max: number): number {
  const n = Number(value)
  if (!Number.isFinite(n) || n < min || n > max) throw new ConfigError(`${what}: expected a number in [${min}, ${max}], got '${String(value)}'`)
  return n
}
