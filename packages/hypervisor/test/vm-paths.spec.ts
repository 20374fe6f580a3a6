import { describe, expect, it } from 'vitest'
import { vmPaths } from '../src/index.js'
import { inside } from '../src/qemu/vm-paths.js'

describe('VM paths', () => {
  it('keeps every VM file in its own dir under the data dir', () => {
    const p = vmPaths('/data', { id: 'vm1', disks: [{ name: 'vda', sizeMiB: 1 }] })
    expect(p).toEqual({ dir: '/data/vms/vm1', pidFile: '/data/vms/vm1/qemu.pid', qmpSocket: '/data/vms/vm1/qmp.sock', serialLog: '/data/vms/vm1/serial.log', serialSocket: '/data/vms/vm1/tty.sock', qemuLog: '/data/vms/vm1/qemu.log', disks: { vda: '/data/vms/vm1/vda.qcow2' } })
  })

  it.each(['../x', '/etc', 'a/../../b'])('refuses %s escaping the data dir', (path) => {
    expect(() => inside('/data/vms', path)).toThrow(expect.objectContaining({ code: 'ERR_PATH_OUTSIDE_DATA_DIR' }))
  })

  it('refuses a data dir whose QMP socket path is too long for a unix socket', () => {
    expect(() => vmPaths(`/${'d'.repeat(120)}`, { id: 'vm' })).toThrow(expect.objectContaining({ code: 'ERR_PATH_OUTSIDE_DATA_DIR' }))
  })
})
