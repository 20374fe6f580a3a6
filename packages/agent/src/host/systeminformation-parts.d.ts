// The two parts of systeminformation the inventory reads (its index loads all ~20 of them).
declare module 'systeminformation/lib/cpu.js' {
  import type { Systeminformation } from 'systeminformation'
  export function cpu (): Promise<Systeminformation.CpuData>
  export function cpuFlags (): Promise<string>
}
declare module 'systeminformation/lib/memory.js' {
  import type { Systeminformation } from 'systeminformation'
  export function mem (): Promise<Systeminformation.MemData>
}
