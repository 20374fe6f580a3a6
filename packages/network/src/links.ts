import { mustRun } from './runner.js'
import type { CommandRunner } from './runner.js'

/** Links as `ip -j -d link show` describes them, reduced to what the driver compares. */
export interface LinkInfo {
  name: string
  mtu: number
  address: string
  /** Administratively up (the UP flag; a tap without QEMU is up but has no carrier). */
  up: boolean
  master?: string
  kind?: string
  vxlan?: { id: number, local?: string, port?: number, learning?: boolean, ageing?: number, proxy?: boolean }
  /** A tun/tap device in tap mode. */
  tap?: boolean
}

interface RawLink {
  ifname: string
  mtu: number
  address?: string
  flags?: string[]
  master?: string
  linkinfo?: { info_kind?: string, info_data?: Record<string, unknown> }
}

export function toLinkInfo (raw: RawLink): LinkInfo {
  const kind = raw.linkinfo?.info_kind
  const data = raw.linkinfo?.info_data ?? {}
  const info: LinkInfo = { name: raw.ifname, mtu: raw.mtu, address: (raw.address ?? '').toLowerCase(), up: (raw.flags ?? []).includes('UP') }
  if (raw.master !== undefined) info.master = raw.master
  if (kind !== undefined) info.kind = kind
  if (kind === 'vxlan') {
    info.vxlan = { id: data.id as number, local: data.local as string, port: data.port as number, learning: data.learning as boolean, ageing: data.ageing as number, proxy: data.proxy as boolean }
  }
  if (kind === 'tun') info.tap = data.type === 'tap'
  return info
}

/** Parses `ip -j -d link show` output. */
export function parseLinks (text: string): LinkInfo[] {
  const trimmed = text.trim()
  return trimmed === '' ? [] : (JSON.parse(trimmed) as RawLink[]).map(toLinkInfo)
}

/** The link, or undefined when there is none by that name. */
export async function readLink (run: CommandRunner, name: string): Promise<LinkInfo | undefined> {
  const result = await run('ip', ['-j', '-d', 'link', 'show', 'dev', name])
  if (result.exitCode !== 0) return undefined
  return parseLinks(result.stdout)[0]
}

export async function listLinks (run: CommandRunner): Promise<LinkInfo[]> {
  return parseLinks(await mustRun(run, 'ip', ['-j', '-d', 'link', 'show']))
}

/** What `ip link set` must change to reach the wanted settings (empty: nothing to do). */
export function linkChanges (link: LinkInfo, want: { mtu: number, address?: string, master?: string }): string[] {
  const args: string[] = []
  if (link.mtu !== want.mtu) args.push('mtu', String(want.mtu))
  if (want.address !== undefined && link.address !== want.address) args.push('address', want.address)
  if (want.master !== undefined && link.master !== want.master) args.push('master', want.master)
  if (!link.up) args.push('up')
  return args
}

/** Applies linkChanges, if any. */
export async function setLink (run: CommandRunner, link: LinkInfo, want: { mtu: number, address?: string, master?: string }): Promise<void> {
  const changes = linkChanges(link, want)
  if (changes.length > 0) await mustRun(run, 'ip', ['link', 'set', 'dev', link.name, ...changes])
}

/** Deletes a link; no-op when it is already gone. */
export async function deleteLink (run: CommandRunner, name: string): Promise<void> {
  if (await readLink(run, name) !== undefined) await mustRun(run, 'ip', ['link', 'del', 'dev', name])
}
