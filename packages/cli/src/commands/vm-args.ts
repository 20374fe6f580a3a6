import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { parseSize, type AgentClient } from '@meshvirt/agent'
import { UsageError, type CommandContext } from '../command.js'
import { guestFromFlags } from './guest-args.js'

/** The spec `meshvirt vm create` sends (the wire's VmSpec fields as plain data). */
export interface VmSpecInput {
  name: string
  resources: { vcpus: number, memoryBytes: number, diskBytes: number }
  maxMemoryBytes?: number
  maxVcpus?: number
  boot: { image?: string, library?: { ref: string }, kernel?: string, initrd?: string, cmdline?: string }
  constraints: Array<{ key: string, op: number, value?: string }>
  group?: string
  affinity: string[]
  antiAffinity: string[]
  softAffinity: string[]
  softAntiAffinity: string[]
  policy: number
  host?: string
  cpuModel?: string
  notMigratable?: boolean
  noBalance?: boolean
  replicas?: number
  rpoMs?: number
  spreadBy?: string
  restart?: number
  nics?: Array<{ network: string, ip?: string }>
  guest?: { hostname?: string, sshAuthorizedKeys?: string[], userData?: string }
}

// Enum numbers of proto/vm.proto (LabelConstraint.Op, PlacementPolicy).
const OP = { eq: 1, ne: 2, exists: 3, notExists: 4 }
const POLICY: Record<string, number> = { binpack: 1, spread: 2 }
// proto/vm.proto RestartPolicy.
const RESTART: Record<string, number> = { never: 1, 'on-crash': 2, always: 3 }

/** `zone=a`, `zone!=b`, `gpu` (exists), `!gpu` (does not exist). */
export function parseConstraint (text: string): { key: string, op: number, value?: string } {
  const ne = text.indexOf('!=')
  if (ne > 0) return { key: text.slice(0, ne), op: OP.ne, value: text.slice(ne + 2) }
  const eq = text.indexOf('=')
  if (eq > 0) return { key: text.slice(0, eq), op: OP.eq, value: text.slice(eq + 1) }
  if (text.startsWith('!') && text.length > 1) return { key: text.slice(1), op: OP.notExists }
  if (/^[A-Za-z0-9._/-]+$/.test(text)) return { key: text, op: OP.exists }
  throw new UsageError(`--label '${text}': expected key=value, key!=value, key or !key`)
}

const list = (v: unknown): string[] => (Array.isArray(v) ? v as string[] : v === undefined ? [] : [v as string]).flatMap((s) => s.split(',')).filter((s) => s !== '')

export function specFromFlags (ctx: CommandContext): VmSpecInput {
  const v = ctx.values
  const name = (v.name as string | undefined) ?? ctx.positionals[0]
  if (name === undefined) throw new UsageError('a VM needs a name: --name NAME')
  const vcpus = Number(v.vcpus ?? 1)
  if (!Number.isInteger(vcpus) || vcpus < 1) throw new UsageError(`--vcpus must be a whole number ≥ 1, got '${String(v.vcpus)}'`)
  const policy = (v.policy as string | undefined) ?? 'binpack'
  if (POLICY[policy] === undefined) throw new UsageError(`--policy must be binpack or spread, got '${policy}'`)
  const spec: VmSpecInput = {
    name,
    resources: {
      vcpus,
      memoryBytes: parseSize((v.memory as string | undefined) ?? '256M', '--memory'),
      diskBytes: parseSize((v.disk as string | undefined) ?? '0', '--disk')
    },
    boot: {},
    constraints: list(v.label).map(parseConstraint),
    affinity: list(v.affinity),
    antiAffinity: list(v['anti-affinity']),
    softAffinity: list(v['soft-affinity']),
    softAntiAffinity: list(v['soft-anti-affinity']),
    policy: POLICY[policy] as number
  }
  for (const [flag, key] of [['kernel', 'kernel'], ['initrd', 'initrd']] as const) {
    const value = v[flag] as string | undefined
    // As people type them: relative to where the command runs (the agent may run anywhere else).
    if (value !== undefined) spec.boot[key] = resolve(ctx.cwd ?? process.cwd(), value)
  }
  const image = v.image as string | undefined
  if (image !== undefined) {
    // A file when it looks like one (a path, a disk image's suffix) or names one; otherwise a name in the cluster's library.
    const path = resolve(ctx.cwd ?? process.cwd(), image)
    if (image.includes('/') || /\.(qcow2|raw|img)$/.test(image) || existsSync(path)) spec.boot.image = path
    else spec.boot.library = { ref: image }
  }
  if (v.cmdline !== undefined) spec.boot.cmdline = v.cmdline as string
  if (v.group !== undefined) spec.group = v.group as string
  if (v.host !== undefined) spec.host = v.host as string
  if (v['cpu-model'] !== undefined) spec.cpuModel = v['cpu-model'] as string
  if (v['not-migratable'] === true) spec.notMigratable = true
  if (v['no-balance'] === true) spec.noBalance = true
  if (v['max-memory'] !== undefined) spec.maxMemoryBytes = parseSize(v['max-memory'] as string, '--max-memory')
  if (v['max-vcpus'] !== undefined) spec.maxVcpus = wholeNumber(v['max-vcpus'] as string, '--max-vcpus')
  if (v.replicas !== undefined) spec.replicas = wholeNumber(v.replicas as string, '--replicas')
  if (v.rpo !== undefined) spec.rpoMs = parseRpo(v.rpo as string)
  if (v['spread-by'] !== undefined) spec.spreadBy = v['spread-by'] as string
  const nets = Array.isArray(v.net) ? v.net as string[] : v.net === undefined ? [] : [v.net as string]
  if (nets.length > 0) spec.nics = nets.map(parseNic)
  const guest = guestFromFlags(ctx)
  if (guest !== undefined) spec.guest = guest
  if (v.restart !== undefined) {
    const restart = RESTART[v.restart as string]
    if (restart === undefined) throw new UsageError(`--restart must be never, on-crash or always, got '${String(v.restart)}'`)
    spec.restart = restart
  }
  return spec
}

/** `--net NAME` or `--net NAME,ip=ADDR`: a NIC on network NAME (its address claimed for the VM, or the one asked). */
export function parseNic (text: string): { network: string, ip?: string } {
  const [network = '', ...rest] = text.split(',')
  if (network === '') throw new UsageError(`--net '${text}': expected NAME or NAME,ip=ADDRESS`)
  const nic: { network: string, ip?: string } = { network }
  for (const part of rest) {
    const m = /^ip=(.+)$/.exec(part)
    if (m === null) throw new UsageError(`--net '${text}': unknown option '${part}' (only ip=ADDRESS)`)
    nic.ip = m[1] as string
  }
  return nic
}

export function wholeNumber (text: string, flag: string): number {
  const n = Number(text)
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${flag} must be a whole number ≥ 0, got '${text}'`)
  return n
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** `500ms`, `5s`, `2m`, `1h`, `30d`; a bare number is seconds. Returns milliseconds. */
export function parseDuration (text: string, flag: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text)
  if (m === null) throw new UsageError(`${flag}: expected a duration such as 500ms, 5s or 2m, got '${text}'`)
  return Math.round(Number(m[1]) * (DURATION_UNITS[m[2] ?? 's'] as number))
}

/** `--rpo`: a duration that is not zero (on the wire 0 means "unset": the default 5 s would be taken silently). */
export function parseRpo (text: string): number {
  const ms = parseDuration(text, '--rpo')
  if (ms === 0) throw new UsageError(`--rpo: a replica cannot be 0 s old; give at least 1s, got '${text}'`)
  return ms
}

/** 850 ms, 4.2 s, 3 min. */
export function formatDuration (ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`
  return `${Math.round(ms / 60_000)} min`
}

/** Resolves a VM reference given on the command line: an id (vm-…) or a name. */
export function vmRef (ctx: CommandContext): { id?: string, name?: string } {
  const ref = ctx.positionals[0]
  if (ref === undefined) throw new UsageError('name the VM (its name or id)')
  return /^vm-[0-9a-f]{16}$/.test(ref) ? { id: ref } : { name: ref }
}

/** Host id → name, for tables (the view of the asked agent). */
export async function hostNames (client: AgentClient): Promise<Map<string, string>> {
  const res = await client.call({ listHosts: {} })
  return new Map((res.hostList?.hosts ?? []).map((h) => [h.advert?.hostId ?? '', h.advert?.hostname ?? '']))
}

/** The flag of `vm create` (and `group create`) that sets a spec field, by the path the agent's checks name it. */
const FLAG_OF_FIELD: Array<[RegExp, string]> = [
  [/^name$/, '--name'],
  [/^resources\.vcpus$/, '--vcpus'],
  [/^resources\.memoryBytes$/, '--memory'],
  [/^resources\.diskBytes$/, '--disk'],
  [/^maxVcpus$/, '--max-vcpus'],
  [/^maxMemoryBytes$/, '--max-memory'],
  [/^boot\.library\./, '--image'],
  [/^boot$/, '--image/--kernel'],
  [/^replicas$/, '--replicas'],
  [/^rpoMs$/, '--rpo'],
  [/^spreadBy$/, '--spread-by'],
  [/^nics(\[|$)/, '--net'],
  [/^guest\.hostname$/, '--hostname'],
  [/^guest\.sshAuthorizedKeys$/, '--ssh-key'],
  [/^guest\.userData$/, '--user-data']
]

export function flagOfField (field: string): string | undefined {
  return FLAG_OF_FIELD.find(([re]) => re.test(field))?.[1]
}

/**
 * An agent's refusal of a spec field, said with the flag that sets it: `--vcpus: vcpus must be …`.
 * A message that names its flag already, and any other error, pass unchanged.
 */
export function withFlag (err: unknown): unknown {
  const e = err as Error & { code?: string, details?: Record<string, string> }
  const field = e.details?.field
  if (e.code !== 'INVALID_ARGUMENT' || field === undefined) return err
  const flag = flagOfField(field)
  if (flag === undefined || flag.split('/').some((f) => e.message.includes(f))) return err
  e.message = `${flag}: ${e.message}`
  return e
}
