import { readFile } from 'node:fs/promises'

/** A guest's I/O counters as the host sees them (bytes since its QEMU started; the taps' since created). */
export interface GuestIo {
  /** What its QEMU read from and wrote to the host's storage (/proc/PID/io: page-cache hits not counted). */
  diskReadBytes: number
  diskWriteBytes: number
  /** From the guest's side: what it received and sent on its NICs (a tap's tx is the guest's rx). */
  netRxBytes: number
  netTxBytes: number
}

export async function readGuestIo (pid: number, taps: readonly string[], root = ''): Promise<GuestIo | undefined> {
  const io = await readFile(`${root}/proc/${pid}/io`, 'utf8').catch(() => undefined)
  if (io === undefined) return undefined
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(io)?.[1] ?? 0)
  let netRxBytes = 0
  let netTxBytes = 0
  for (const tap of taps) {
    const read = async (f: string): Promise<number> => Number((await readFile(`${root}/sys/class/net/${tap}/statistics/${f}`, 'utf8').catch(() => '0')).trim()) || 0
    netRxBytes += await read('tx_bytes')
    netTxBytes += await read('rx_bytes')
  }
  return { diskReadBytes: field('read_bytes'), diskWriteBytes: field('write_bytes'), netRxBytes, netTxBytes }
}
