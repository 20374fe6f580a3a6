import { describe, expect, it } from 'vitest'
import type { VmSpec as DriverSpec } from '@meshvirt/hypervisor'
import { createLogger } from '../src/log/logger.js'
import { VmPreparation, VmPrepareError, type VmResource } from '../src/vm/vm-preparation.js'
import { vmSpecFromWire } from '../src/vm/vm-spec-codec.js'

const MIB = 2 ** 20
const spec = vmSpecFromWire({ name: 'web', resources: { vcpus: 2, memoryBytes: 256 * MIB, diskBytes: 64 * MIB }, boot: { image: '/var/lib/meshvirt/images/debian.qcow2' } })

/** A resource that records what it was asked, and may be told to fail. */
function recorder (name: string, log: string[], opts: { failPrepare?: boolean, failRelease?: boolean } = {}): VmResource {
  return {
    name,
    prepare: (vm, driver): DriverSpec => {
      log.push(`${name}.prepare ${vm.id} ${vm.origin.kind}`)
      if (opts.failPrepare === true) throw Object.assign(new Error('no such network'), { code: 'ERR_NETWORK' })
      return { ...driver, cpuModel: `${driver.cpuModel ?? ''}+${name}` }
    },
    release: (id) => {
      log.push(`${name}.release ${id}`)
      if (opts.failRelease === true) throw new Error('tap busy')
    }
  }
}

describe('VmPreparation: the one way a VM comes to exist on a host', () => {
  it('gives every origin the spec\'s disks; a promotion imports them from the replica, a create keeps the base image', async () => {
    const prep = new VmPreparation({ log: createLogger({ write: () => {} }) })
    const created = await prep.prepare('vm-1', spec, { kind: 'create' })
    expect(created.disks).toEqual([{ name: 'vda', sizeMiB: 64, base: '/var/lib/meshvirt/images/debian.qcow2' }])
    expect(created).toMatchObject({ id: 'vm-1', vcpus: 2, memoryMiB: 256, boot: { kind: 'disk' } })
    const incoming = await prep.prepare('vm-1', spec, { kind: 'incoming' })
    expect(incoming.disks).toEqual(created.disks)
    const promoted = await prep.prepare('vm-1', spec, { kind: 'promotion', replicaDisk: '/data/replicas/vm-1/vda.img' })
    expect(promoted.disks).toEqual([{ name: 'vda', sizeMiB: 64, importFrom: '/data/replicas/vm-1/vda.img' }])
    expect(prep.names()).toEqual(['disks'])
  })

  it('prepares the resources in order, each seeing the spec the one before returned, for all three origins', async () => {
    const log: string[] = []
    const prep = new VmPreparation({ resources: [recorder('net', log), recorder('seed', log)], log: createLogger({ write: () => {} }) })
    expect(prep.names()).toEqual(['disks', 'net', 'seed'])
    for (const kind of ['create', 'incoming'] as const) {
      const driver = await prep.prepare('vm-2', spec, { kind })
      expect(driver.cpuModel).toBe('+net+seed')
    }
    await prep.prepare('vm-2', spec, { kind: 'promotion', replicaDisk: '/r/vda.img' })
    expect(log).toEqual([
      'net.prepare vm-2 create', 'seed.prepare vm-2 create',
      'net.prepare vm-2 incoming', 'seed.prepare vm-2 incoming',
      'net.prepare vm-2 promotion', 'seed.prepare vm-2 promotion'
    ])
  })

  it('a resource that fails: those prepared before it are released in reverse, and the error names it and keeps its code', async () => {
    const log: string[] = []
    const prep = new VmPreparation({ resources: [recorder('image', log), recorder('net', log), recorder('seed', log, { failPrepare: true }), recorder('never', log)], log: createLogger({ write: () => {} }) })
    const err = await prep.prepare('vm-3', spec, { kind: 'create' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(VmPrepareError)
    expect(err).toMatchObject({ resource: 'seed', code: 'ERR_NETWORK', message: 'seed: no such network' })
    expect(log).toEqual(['image.prepare vm-3 create', 'net.prepare vm-3 create', 'seed.prepare vm-3 create', 'net.release vm-3', 'image.release vm-3'])
  })

  it('release gives back every resource in reverse; one that fails is logged and the rest are still released', async () => {
    const log: string[] = []
    const warnings: string[] = []
    const prep = new VmPreparation({
      resources: [recorder('image', log), recorder('net', log, { failRelease: true }), recorder('seed', log)],
      log: createLogger({ write: (line) => { warnings.push(line) } })
    })
    await prep.release('vm-4')
    expect(log).toEqual(['seed.release vm-4', 'net.release vm-4', 'image.release vm-4'])
    expect(warnings.join('\n')).toMatch(/could not release a VM resource.*net.*tap busy/)
  })
})
