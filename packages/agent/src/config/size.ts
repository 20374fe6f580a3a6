import { ConfigError } from './errors.js'

const UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 2 ** 10, kb: 2 ** 10, kib: 2 ** 10,
  m: 2 ** 20, mb: 2 ** 20, mib: 2 ** 20,
  g: 2 ** 30, gb: 2 ** 30, gib: 2 ** 30,
  t: 2 ** 40, tb: 2 ** 40, tib: 2 ** 40
}

/**
 * Parses a size such as `512`, `512M`, `4GiB`, `1.5G` into bytes. Units are binary (as QEMU's
 * `-m` and qemu-img read them); a bare number is in `bareUnit` (MiB for memory, as `-m`).
 */
export function parseSize (text: string | number, what: string, bareUnit: 'B' | 'MiB' | 'GiB' = 'MiB'): number {
  if (typeof text === 'number') text = String(text)
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text)
  if (m === null) throw new ConfigError(`${what}: expected a size such as 512M or 4GiB, got '${text}'`)
  const unit = (m[2] ?? '').toLowerCase()
  const scale = unit === '' ? UNITS[bareUnit.toLowerCase()] : UNITS[unit]
  if (scale === undefined) throw new ConfigError(`${what}: unknown unit '${m[2]}' in '${text}' (use K, M, G or T)`)
  const bytes = Math.floor(Number(m[1]) * scale)
  if (!Number.isSafeInteger(bytes)) throw new ConfigError(`${what}: '${text}' is too large`)
  return bytes
}

/** Formats bytes for tables: 512 MiB, 3.5 GiB. */
export function formatSize (bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = bytes
  let i = 0
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++ }
  const text = Number.isInteger(v) || v >= 100 ? v.toFixed(0) : v.toFixed(1)
  return `${text} ${units[i]}`
}
