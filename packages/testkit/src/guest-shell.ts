import { readFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'
import { waitForSerial } from './guest.js'

/** A guest's serial port and log on its owner: DATA_DIR/vms/<id>/ (the hypervisor's VM paths). */
export function guestFiles (dataDir: string, vmId: string): { socket: string, log: string } {
  const dir = join(dataDir, 'vms', vmId)
  return { socket: join(dir, 'tty.sock'), log: join(dir, 'serial.log') }
}

let marks = 0

/**
 * The serial console is shared: the test guest's own periodic lines (`MESHVIRT-COUNTER 51`) can
 * land between a command's markers (seen in CI). Each is written as a whole line, so they are
 * dropped line by line. (Kernel messages are kept: a command may print them, `dmesg | grep …`.)
 */
export function withoutConsoleNoise (output: string): string {
  return output.split('\n').filter((line) => !/^MESHVIRT-[A-Z]+\b/.test(line)).join('\n')
}

/**
 * Runs a shell command line in the test guest (its serial shell, prompt `guest# `) and returns what
 * it printed between two markers, without carriage returns or the console's noise. The port stays open until the end
 * marker is in the serial log: QEMU may drop input still unread when a client hangs up. One caller
 * per guest at a time.
 */
export async function inGuest (files: { socket: string, log: string }, command: string, timeoutMs = 30_000): Promise<string> {
  const tag = `MVT${process.pid}x${++marks}`
  const from = (await readFile(files.log).catch(() => Buffer.alloc(0))).length
  const socket = connect(files.socket)
  try {
    await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
    socket.resume()
    // The markers are printed by echo, so the typed line itself (echoed by the tty) never matches them.
    socket.write(`echo ${tag}-B""EGIN; ${command}; echo ${tag}-E""ND\n`)
    const m = await waitForSerial(files.log, new RegExp(`${tag}-BEGIN\\r?\\n([\\s\\S]*?)${tag}-END`), timeoutMs, from)
    return withoutConsoleNoise((m[1] as string).replaceAll('\r', ''))
  } finally {
    socket.destroy()
  }
}
