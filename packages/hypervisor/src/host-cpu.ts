import { readFileSync } from 'node:fs'

/** The host's CPU as /proc/cpuinfo describes its first processor. */
export interface HostCpu {
  /** `model name`; '' when the line is missing. */
  model: string
  /** `flags` as Linux spells them, sorted; empty when the line is missing (not x86, not Linux). */
  flags: readonly string[]
}

/** The model name and flags in /proc/cpuinfo's text (pure). */
export function parseCpuinfo (cpuinfo: string): HostCpu {
  return { model: field(cpuinfo, 'model name'), flags: field(cpuinfo, 'flags').split(/\s+/).filter((f) => f !== '').sort() }
}

let host: HostCpu | undefined
/** This host's CPU, read once (it does not change while we run): the one reading of /proc/cpuinfo. */
export function hostCpu (): HostCpu {
  if (host === undefined) {
    let cpuinfo = ''
    try { cpuinfo = readFileSync('/proc/cpuinfo', 'utf8') } catch { /* not Linux: no model, no flags */ }
    host = parseCpuinfo(cpuinfo)
  }
  return host
}

/** The first `name : value` line's value, trimmed. Blanks are [ \t]: an empty line must not take the next one's. */
function field (cpuinfo: string, name: string): string {
  return new RegExp(`^${name}[ \\t]*:(.*)$`, 'm').exec(cpuinfo)?.[1]?.trim() ?? ''
}
