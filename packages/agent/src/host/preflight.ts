import { join } from 'node:path'
import { MAX_SOCKET_PATH, vmPaths } from '@meshvirt/hypervisor'
import type { AgentConfig } from '../config/agent-config.js'
import { ConfigError } from '../config/errors.js'
import { defaultMonitorConfig, parseMonitorListen, type MonitorConfig } from '../monitor/index.js'

export const CONTROL_SOCKET = 'control.sock'
/** Linux caps a unix socket path at 108 bytes with its NUL; ours stay a little under. */
const MAX_CONTROL_SOCKET_PATH = 100
/** The longest VM id the agent makes (`vm-` and 16 hex digits): its QMP socket is the longest path. */
const LONGEST_VM_ID = `vm-${'0'.repeat(16)}`

/** What start-up needs settled before anything is created, joined or listened on. */
export interface Preflight {
  controlSocket: string
  monitor: MonitorConfig
  /** Where the HTTPS API listens; absent: no API. */
  api?: { host: string, port: number }
}

/**
 * Every start-up error that can be known from the configuration alone, found before the agent
 * touches the mesh: a bad monitor address, a data dir too long for the unix sockets under it.
 * Throws a ConfigError (INVALID_CONFIG) whose message is the one line the operator sees.
 */
export function preflight (config: AgentConfig): Preflight {
  const controlSocket = join(config.dataDir, CONTROL_SOCKET)
  if (Buffer.byteLength(controlSocket) > MAX_CONTROL_SOCKET_PATH) {
    throw new ConfigError(`control socket path ${controlSocket} is too long for a unix socket (max ~${MAX_CONTROL_SOCKET_PATH} bytes): use a shorter --data-dir`)
  }
  try {
    vmPaths(config.dataDir, { id: LONGEST_VM_ID })
  } catch {
    throw new ConfigError(`data dir ${config.dataDir} is too long: the QMP socket of a VM under it would pass the ${MAX_SOCKET_PATH} bytes a unix socket allows; use a shorter --data-dir`)
  }
  const monitor = config.monitorListen === undefined
    ? defaultMonitorConfig(config.dataDir)
    : config.monitorListen === 'off'
      ? { ...defaultMonitorConfig(config.dataDir), http: false }
      : { ...defaultMonitorConfig(config.dataDir), ...parseMonitorListen(config.monitorListen, '--monitor-listen') }
  const api = config.apiListen === undefined || config.apiListen === 'off' ? undefined : parseMonitorListen(config.apiListen, '--api-listen')
  return { controlSocket, monitor, ...(api !== undefined ? { api } : {}) }
}

/** A listen failure of the mesh said in one line: which address, and what to do. */
export function listenError (err: unknown, listen: readonly string[]): Error {
  const message = (err as Error).message ?? String(err)
  const code = /\b(EADDRINUSE|EADDRNOTAVAIL|EACCES)\b/.exec(message)?.[1]
  if (code === undefined) return err instanceof Error ? err : new Error(message)
  const addr = /(\/ip[46]\/[^\s:]+(?:\/[^\s:]+)*)/.exec(message)?.[1] ?? listen.join(' ')
  const why = code === 'EADDRINUSE'
    ? 'the address is already in use (another agent or program holds the port): pick another with --listen'
    : code === 'EADDRNOTAVAIL'
      ? 'no interface of this host has that address: use one of its own, or 0.0.0.0'
      : 'permission denied (ports below 1024 need privileges)'
  return new ConfigError(`cannot listen on ${addr}: ${why}`)
}
