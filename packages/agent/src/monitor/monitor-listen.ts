import { isIP } from 'node:net'
import { ConfigError } from '../config/errors.js'

/**
 * Reads the monitoring address setting (`--monitor-listen`, `MESHVIRT_MONITOR_LISTEN`):
 * `HOST:PORT`, `[V6]:PORT`, `:PORT` or `PORT` (loopback), port 0 = any free one. Names are
 * refused: the address is the security boundary (loopback unless deliberately widened), so it
 * must say exactly where the agent listens.
 */
export function parseMonitorListen (text: string, setting = 'monitor listen address'): { host: string, port: number } {
  const m = /^(?:(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+))?:)?(\d{1,5})$/.exec(text.trim())
  const host = m?.[1] ?? m?.[2] ?? '127.0.0.1'
  const port = Number(m?.[3])
  if (m === null || isIP(host) === 0 || !Number.isInteger(port) || port > 65_535) {
    throw new ConfigError(`${setting}: '${text}' is not HOST:PORT with an IP address (e.g. 127.0.0.1:7480, [::1]:7480, :0)`)
  }
  return { host, port }
}
