import { isAbsolute, join, relative, resolve } from 'node:path'
import { MAX_SOCKET_PATH } from '../constants.js'
import { PathOutsideDataDirError } from '../errors.js'
import type { VmPaths, VmSpec } from '../types.js'

/** `<dataDir>/vms/<id>/…`: everything QEMU needs to be re-attached lives in the VM's own dir. */
export function vmPaths (dataDir: string, spec: Pick<VmSpec, 'id' | 'disks'>): VmPaths {
  const dir = inside(join(dataDir, 'vms'), spec.id)
  const disks: Record<string, string> = {}
  for (const disk of spec.disks ?? []) disks[disk.name] = join(dir, `${disk.name}.qcow2`)
  const paths = {
    dir,
    pidFile: join(dir, 'qemu.pid'),
    qmpSocket: join(dir, 'qmp.sock'),
    serialLog: join(dir, 'serial.log'),
    // As long as qmp.sock's name, so the length check below covers both sockets.
    serialSocket: join(dir, 'tty.sock'),
    qemuLog: join(dir, 'qemu.log'),
    disks
  }
  if (Buffer.byteLength(paths.qmpSocket) > MAX_SOCKET_PATH) {
    throw new PathOutsideDataDirError(`QMP socket path ${paths.qmpSocket} is longer than the ${MAX_SOCKET_PATH} bytes a unix socket allows: use a shorter data dir`)
  }
  return paths
}

export function recordPath (dir: string): string {
  return join(dir, 'vm.json')
}

/** Resolve `path` under `root`, refusing anything that escapes it (`..`, absolute paths elsewhere). */
export function inside (root: string, path: string): string {
  const full = resolve(root, path)
  if (!isWithin(root, full)) throw new PathOutsideDataDirError(`${path} is outside ${root}: VM files must stay in the data dir`)
  return full
}

export function isWithin (root: string, path: string): boolean {
  const rel = relative(resolve(root), resolve(path))
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))
}
