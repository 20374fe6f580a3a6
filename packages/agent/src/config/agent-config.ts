import type { Resources } from '../resources.js'
import type { BalanceKnobs } from '../balance/balance-knobs.js'
import { parseBalanceConfig, type BalanceConfigInput } from './balance-config.js'
import { ConfigError } from './errors.js'
import { parseSize } from './size.js'

/** Overcommit defaults as OpenStack Nova's: CPU 4.0 (idle vCPUs are common), memory and disk 1.0 (running out of either hurts a guest). */
export const DEFAULT_OVERCOMMIT = { cpu: 4.0, memory: 1.0, disk: 1.0 } as const
export const DEFAULT_LISTEN = ['/ip4/0.0.0.0/tcp/7946']
export const DEFAULT_CLUSTER = 'default'
/**
 * The LAN preset's heartbeat (mesh timing.ts). Heartbeats only back up the failure detector (a
 * dead host's peers see its connections drop and probe it at once; member probing finds a silent
 * one) and refresh adverts; an idle agent among 10 spent 5.1 % of a core at 1 s, 3.0 % at 2 s,
 * ~2.9 % at 5 s and ~2.0 % at 15 s (docs/benchmarks.md, "Lean agents", "Member probing",
 * "Heartbeats every 15 s").
 */
export const DEFAULT_HEARTBEAT_MS = 15_000
export const DEFAULT_DATA_DIR = '/var/lib/meshvirt'

export type LogLevel = 'debug' | 'info' | 'warn' | 'error'

/** The agent's configuration, resolved once; each part receives only its slice. */
export interface AgentConfig {
  /** The host's display name (default: the OS hostname); host ids stay the peer ids. */
  name: string | undefined
  dataDir: string
  listen: string[]
  /** Multiaddrs with /p2p/<peer id> of any running agent: a door in, nothing more. */
  bootstrap: string[]
  labels: Record<string, string>
  cluster: string
  /** File holding the pre-shared cluster key (written by `meshvirt cluster init`). */
  clusterKeyFile: string
  heartbeatMs: number
  /** Held back for the host itself (its OS, the agent, QEMU overhead); never allocated to VMs. */
  hostReserved: Resources
  overcommit: { cpu: number, memory: number, disk: number }
  logLevel: LogLevel
  /** 'qemu' (real guests) or 'sim' — the simulated driver, for control-plane benchmarks only. */
  hypervisor: 'qemu' | 'sim'
  /** 'auto' decides with a real boot probe (cached); never from the presence of /dev/kvm. */
  accel: 'auto' | 'kvm' | 'tcg'
  /** Dirs VM kernels, initrds and base images may come from (besides the data dir). */
  imageDirs: string[]
  /** The tiny guest the accelerator probe boots (scripts/build-guest makes one). */
  probeKernel: string | undefined
  probeInitrd: string | undefined
  /** Where /metrics and the dashboard listen: HOST:PORT (default 127.0.0.1, a free port), or `off`. */
  monitorListen: string | undefined
  /** The HTTPS API's address (HOST:PORT); absent: no API (the default). */
  apiListen: string | undefined
  /** Bound on replication traffic to each replica holder, bytes/s. */
  replicaBandwidth: number
  /** Bound on this host's image fetches together, bytes/s (0: unbounded). */
  imageBandwidth: number
  /** Each named library image is kept on at least this many hosts (distinct failure domains where possible). */
  imageCopies: number
  /** Library images this host keeps unused beyond this many bytes are evicted, oldest-used first. */
  imageCacheBytes: number
  /** Where other hosts send this host's overlay (VXLAN) traffic; default: the IPv4 address the agent listens on. */
  underlayAddress: string | undefined
  /** 'linux' (bridges, VXLAN, taps, dnsmasq, nftables) or 'sim' — in memory, for control-plane tests. */
  network: 'linux' | 'sim'
  /** Rebalancing knobs set by the operator (the rest keep their defaults). */
  balance: Partial<BalanceKnobs>
}

/** What a config source may set; every field optional, sizes as text or numbers. */
export interface AgentConfigInput {
  name?: string
  dataDir?: string
  listen?: string[]
  bootstrap?: string[]
  labels?: Record<string, string> | string[]
  cluster?: string
  clusterKeyFile?: string
  heartbeatMs?: number | string
  hostReserved?: { vcpus?: number | string, memory?: number | string, disk?: number | string }
  overcommit?: { cpu?: number | string, memory?: number | string, disk?: number | string }
  logLevel?: string
  hypervisor?: string
  accel?: string
  imageDirs?: string[]
  probeKernel?: string
  probeInitrd?: string
  monitorListen?: string
  apiListen?: string
  /** A size per second: `100M` (MiB/s). */
  replicaBandwidth?: number | string
  imageBandwidth?: number | string
  imageCopies?: number | string
  imageCache?: number | string
  underlayAddress?: string
  network?: string
  balance?: BalanceConfigInput
}

const KNOWN_KEYS = new Set(['balance', 'underlayAddress', 'network', 'replicaBandwidth', 'imageBandwidth', 'imageCopies', 'imageCache', 'monitorListen', 'apiListen', 'hypervisor', 'accel', 'imageDirs', 'probeKernel', 'probeInitrd', 'name', 'dataDir', 'listen', 'bootstrap', 'labels', 'cluster', 'clusterKeyFile', 'heartbeatMs', 'hostReserved', 'overcommit', 'logLevel'])
const LABEL_KEY = /^[a-z0-9]([a-z0-9._-]{0,62})$/i

/**
 * Merges the sources, later ones winning field by field: defaults < config file < environment
 * < flags. Pure: the caller reads the file and the environment.
 */
export function resolveAgentConfig (sources: Array<{ name: string, input: AgentConfigInput }>): AgentConfig {
  const merged: AgentConfigInput = {}
  for (const { name, input } of sources) {
    for (const key of Object.keys(input)) {
      if (!KNOWN_KEYS.has(key)) throw new ConfigError(`${name}: unknown setting '${key}' (known: ${[...KNOWN_KEYS].join(', ')})`)
    }
    Object.assign(merged, dropUndefined(input), {
      hostReserved: { ...merged.hostReserved, ...dropUndefined(input.hostReserved ?? {}) },
      overcommit: { ...merged.overcommit, ...dropUndefined(input.overcommit ?? {}) },
      balance: { ...merged.balance, ...dropUndefined(input.balance ?? {}) }
    })
  }
  const dataDir = merged.dataDir ?? DEFAULT_DATA_DIR
  return {
    name: merged.name === undefined ? undefined : checkHostName(merged.name),
    dataDir,
    listen: nonEmpty(merged.listen) ?? DEFAULT_LISTEN,
    bootstrap: merged.bootstrap ?? [],
    labels: parseLabels(merged.labels ?? {}),
    cluster: checkName(merged.cluster ?? DEFAULT_CLUSTER),
    clusterKeyFile: merged.clusterKeyFile ?? `${dataDir}/cluster.key`,
    heartbeatMs: positive(merged.heartbeatMs ?? DEFAULT_HEARTBEAT_MS, 'heartbeatMs', 50, 60_000),
    hostReserved: {
      vcpus: wholeNumber(positive(merged.hostReserved?.vcpus ?? 0, 'hostReserved.vcpus', 0, 4096), 'hostReserved.vcpus'),
      memoryBytes: parseSize(merged.hostReserved?.memory ?? 0, 'hostReserved.memory'),
      diskBytes: parseSize(merged.hostReserved?.disk ?? 0, 'hostReserved.disk')
    },
    overcommit: {
      cpu: ratio(merged.overcommit?.cpu ?? DEFAULT_OVERCOMMIT.cpu, 'overcommit.cpu'),
      memory: ratio(merged.overcommit?.memory ?? DEFAULT_OVERCOMMIT.memory, 'overcommit.memory'),
      disk: ratio(merged.overcommit?.disk ?? DEFAULT_OVERCOMMIT.disk, 'overcommit.disk')
    },
    logLevel: logLevel(merged.logLevel ?? 'info'),
    hypervisor: oneOf(merged.hypervisor ?? 'qemu', 'hypervisor', ['qemu', 'sim'] as const),
    accel: oneOf(merged.accel ?? 'auto', 'accel', ['auto', 'kvm', 'tcg'] as const),
    imageDirs: merged.imageDirs ?? [],
    probeKernel: merged.probeKernel,
    probeInitrd: merged.probeInitrd,
    monitorListen: merged.monitorListen,
    apiListen: merged.apiListen,
    replicaBandwidth: bandwidth(merged.replicaBandwidth ?? DEFAULT_REPLICA_BANDWIDTH),
    imageBandwidth: imageBandwidth(merged.imageBandwidth ?? 0),
    imageCopies: wholeNumber(positive(merged.imageCopies ?? DEFAULT_IMAGE_COPIES, 'imageCopies', 1, 16), 'imageCopies'),
    imageCacheBytes: parseSize(merged.imageCache ?? DEFAULT_IMAGE_CACHE, 'imageCache (bytes, e.g. 50G)', 'GiB'),
    underlayAddress: merged.underlayAddress === undefined ? undefined : ipv4(merged.underlayAddress, 'underlayAddress'),
    network: oneOf(merged.network ?? (merged.hypervisor === 'sim' ? 'sim' : 'linux'), 'network', ['linux', 'sim'] as const),
    balance: parseBalanceConfig(merged.balance)
  }
}

/** Replication to one holder may use this much by default: a quarter of a 1 GbE link (set it per site). */
export const DEFAULT_REPLICA_BANDWIDTH = '32M'

function bandwidth (value: number | string): number {
  const bytes = parseSize(value, 'replicaBandwidth (bytes per second, e.g. 32M)')
  if (bytes < 64 * 1024) throw new ConfigError(`replicaBandwidth: at least 64K per second, got ${String(value)}`)
  return bytes
}

/** Copies of each library image the cluster keeps (Incus keeps 3 of an image among its members). */
export const DEFAULT_IMAGE_COPIES = 2
/** Unused images a host keeps before evicting (the ones VMs use, or that keep a copy count, always stay). */
export const DEFAULT_IMAGE_CACHE = '20G'

function imageBandwidth (value: number | string): number {
  const bytes = parseSize(value, 'imageBandwidth (bytes per second, e.g. 100M; 0: unbounded)')
  if (bytes !== 0 && bytes < 1024 * 1024) throw new ConfigError(`imageBandwidth: 0 (unbounded) or at least 1M per second, got ${String(value)}`)
  return bytes
}

/** Labels from `k=v` strings or an object; keys are DNS-label-like so they read well in constraints. */
export function parseLabels (input: Record<string, string> | string[]): Record<string, string> {
  const pairs: Array<[string, string]> = Array.isArray(input)
    ? input.map((kv) => {
      const i = kv.indexOf('=')
      if (i <= 0) throw new ConfigError(`label: expected key=value, got '${kv}'`)
      return [kv.slice(0, i), kv.slice(i + 1)]
    })
    : Object.entries(input)
  const labels: Record<string, string> = {}
  for (const [k, v] of pairs) {
    if (!LABEL_KEY.test(k)) throw new ConfigError(`label: key '${k}' must be 1–63 letters, digits, '.', '_' or '-'`)
    if (typeof v !== 'string' || v.length > 253) throw new ConfigError(`label ${k}: value must be a string of at most 253 characters`)
    labels[k] = v
  }
  return labels
}

function ipv4 (value: string, what: string): string {
  const parts = value.split('.')
  if (parts.length !== 4 || parts.some((p) => !/^[0-9]{1,3}$/.test(p) || Number(p) > 255)) throw new ConfigError(`${what}: expected an IPv4 address (a.b.c.d), got '${value}'`)
  return value
}

function checkHostName (name: string): string {
  if (!/^[a-z0-9]([a-z0-9.-]{0,62})$/i.test(name)) throw new ConfigError(`name: '${name}' must be 1–63 letters, digits, '.' or '-'`)
  return name
}

function checkName (name: string): string {
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/i.test(name)) throw new ConfigError(`cluster: '${name}' must be 1–63 letters, digits or '-'`)
  return name
}

function positive (value: number | string, what: string, min: number, max: number): number {
  const n = Number(value)
  if (!Number.isFinite(n) || n < min || n > max) throw new ConfigError(`${what}: expected a number in [${min}, ${max}], got '${value}'`)
  return n
}

function wholeNumber (n: number, what: string): number {
  if (!Number.isInteger(n)) throw new ConfigError(`${what}: expected a whole number of vCPUs, got '${n}'`)
  return n
}

function ratio (value: number | string, what: string): number {
  const n = Number(value)
  if (!Number.isFinite(n) || n <= 0 || n > 64) throw new ConfigError(`${what}: an overcommit ratio must be in (0, 64], got '${value}'`)
  return n
}

function oneOf<T extends string> (value: string, what: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T
  throw new ConfigError(`${what}: expected ${allowed.join(' or ')}, got '${value}'`)
}

function logLevel (value: string): LogLevel {
  if (value === 'debug' || value === 'info' || value === 'warn' || value === 'error') return value
  throw new ConfigError(`logLevel: expected debug, info, warn or error, got '${value}'`)
}

function nonEmpty (list: string[] | undefined): string[] | undefined {
  return list !== undefined && list.length > 0 ? list : undefined
}

function dropUndefined<T extends object> (o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}
