import { readFile } from 'node:fs/promises'
import type { HostLoad } from '@meshvirt/mesh'

/** What the load is computed from: counters that only grow, read at one instant. */
export interface HostCounters {
  atMs: number
  cpuBusy: number
  cpuTotal: number
  memoryTotalBytes: number
  memoryAvailableBytes: number
  diskReadBytes: number
  diskWriteBytes: number
  netRxBytes: number
  netTxBytes: number
  load1: number
}

/** `cpu` line of /proc/stat: busy and total jiffies (iowait counts as idle). */
export function parseProcStat (text: string): { busy: number, total: number } {
  const f = (/^cpu\s+(.*)$/m.exec(text)?.[1] ?? '').trim().split(/\s+/).map(Number)
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f
  const busy = user + nice + system + irq + softirq + steal
  return { busy, total: busy + idle + iowait }
}

export function parseMeminfo (text: string): { totalBytes: number, availableBytes: number } {
  const kib = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0) * 1024
  return { totalBytes: kib('MemTotal'), availableBytes: kib('MemAvailable') }
}

/** Whole physical disks (not partitions, loop, RAM or device-mapper devices): bytes read and written. */
const DISK = /^(sd[a-z]+|vd[a-z]+|xvd[a-z]+|hd[a-z]+|nvme\d+n\d+|mmcblk\d+)$/
export function parseDiskstats (text: string): { readBytes: number, writeBytes: number } {
  let readBytes = 0
  let writeBytes = 0
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/)
    if (f.length < 10 || !DISK.test(f[2] ?? '')) continue
    readBytes += Number(f[5]) * 512
    writeBytes += Number(f[9]) * 512
  }
  return { readBytes, writeBytes }
}

/** Interfaces but loopback and meshvirt's own (mv…: bridges, VXLAN, taps) and veth ends: what the host sends and receives. */
export function parseNetDev (text: string): { rxBytes: number, txBytes: number } {
  let rxBytes = 0
  let txBytes = 0
  for (const line of text.split('\n').slice(2)) {
    const m = /^\s*([^:\s]+):\s*(.*)$/.exec(line)
    if (m === null || m[1] === 'lo' || /^(mv|veth)/.test(m[1] as string)) continue
    const f = (m[2] as string).trim().split(/\s+/).map(Number)
    rxBytes += f[0] ?? 0
    txBytes += f[8] ?? 0
  }
  return { rxBytes, txBytes }
}

/** The load between two readings: utilisation over the interval, rates per second, memory now. */
export function loadBetween (a: HostCounters, b: HostCounters, vmsRunning: number): HostLoad {
  const seconds = Math.max(0.001, (b.atMs - a.atMs) / 1000)
  const rate = (x: number, y: number): number => Math.max(0, (y - x) / seconds)
  const total = b.cpuTotal - a.cpuTotal
  return {
    load1: b.load1,
    cpuUtilization: total > 0 ? Math.min(1, Math.max(0, (b.cpuBusy - a.cpuBusy) / total)) : 0,
    memoryUsedBytes: Math.max(0, b.memoryTotalBytes - b.memoryAvailableBytes),
    diskUsedBytes: 0,
    vmsRunning,
    diskReadBps: rate(a.diskReadBytes, b.diskReadBytes),
    diskWriteBps: rate(a.diskWriteBytes, b.diskWriteBytes),
    netRxBps: rate(a.netRxBytes, b.netRxBytes),
    netTxBps: rate(a.netTxBytes, b.netTxBytes)
  }
}

/** Reads this machine's counters from /proc (`proc` elsewhere in tests). */
export async function readHostCounters (proc = '/proc', now = Date.now()): Promise<HostCounters> {
  const read = async (f: string): Promise<string> => await readFile(`${proc}/${f}`, 'utf8').catch(() => '')
  const [stat, meminfo, diskstats, netdev, loadavg] = await Promise.all([read('stat'), read('meminfo'), read('diskstats'), read('net/dev'), read('loadavg')])
  const cpu = parseProcStat(stat)
  const mem = parseMeminfo(meminfo)
  const disk = parseDiskstats(diskstats)
  const net = parseNetDev(netdev)
  return { atMs: now, cpuBusy: cpu.busy, cpuTotal: cpu.total, memoryTotalBytes: mem.totalBytes, memoryAvailableBytes: mem.availableBytes, diskReadBytes: disk.readBytes, diskWriteBytes: disk.writeBytes, netRxBytes: net.rxBytes, netTxBytes: net.txBytes, load1: Number(loadavg.split(' ')[0] ?? 0) || 0 }
}
