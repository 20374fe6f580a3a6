import { describe, expect, it } from 'vitest'
import { SimHypervisor, migrationUri, nbdBlockdevServer, nbdServerStartAddress, parseMigrationAddress, tcpAddress, type MigrationAddress } from '../src/index.js'

// The unix default (the VM dir's sockets, or a mesh tunnel's entrance) and the direct TCP
// comparison path, as the QMP arguments of both migration halves spell them (QEMU 7.2).
describe('migration addresses → QMP arguments', () => {
  it.each<[string, MigrationAddress, string, unknown, unknown]>([
    ['/d/vms/a/migrate.sock', { type: 'unix', path: '/d/vms/a/migrate.sock' }, 'unix:/d/vms/a/migrate.sock',
      { type: 'unix', data: { path: '/d/vms/a/migrate.sock' } }, { type: 'unix', path: '/d/vms/a/migrate.sock' }],
    ['tcp:127.0.0.1:4444', { type: 'inet', host: '127.0.0.1', port: 4444 }, 'tcp:127.0.0.1:4444',
      { type: 'inet', data: { host: '127.0.0.1', port: '4444' } }, { type: 'inet', host: '127.0.0.1', port: '4444' }],
    ['tcp:[::1]:10809', { type: 'inet', host: '::1', port: 10809 }, 'tcp:[::1]:10809',
      { type: 'inet', data: { host: '::1', port: '10809' } }, { type: 'inet', host: '::1', port: '10809' }]
  ])('%s', (address, parsed, uri, nbdServerStart, blockdevServer) => {
    const a = parseMigrationAddress(address)
    expect(a).toEqual(parsed)
    expect(migrationUri(a)).toBe(uri)
    expect(nbdServerStartAddress(a)).toEqual(nbdServerStart)
    expect(nbdBlockdevServer(a)).toEqual(blockdevServer)
  })

  it.each(['', 'tcp:', 'tcp:127.0.0.1', 'tcp:127.0.0.1:0', 'tcp:127.0.0.1:65536', 'tcp::4444', 'tcp:host:44x', 'tcp:::1:4444'])('refuses %j', (address) => {
    expect(() => parseMigrationAddress(address)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_MIGRATION_PARAMS' }))
  })

  it('spells TCP endpoints as QEMU URIs, IPv6 bracketed, and refuses a bad port', () => {
    expect(tcpAddress('127.0.0.1', 4444)).toBe('tcp:127.0.0.1:4444')
    expect(tcpAddress('::1', 4444)).toBe('tcp:[::1]:4444')
    expect(() => tcpAddress('127.0.0.1', 0)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_MIGRATION_PARAMS' }))
  })

  it('prepareIncoming listens on unix sockets by default, on the given TCP ports when asked, and wants an NBD port for disks', async () => {
    const hv = new SimHypervisor()
    const spec = (id: string): Parameters<SimHypervisor['prepareIncoming']>[0] => ({ id, vcpus: 1, memoryMiB: 128, boot: { kind: 'kernel', kernel: '/k' }, disks: [{ name: 'vda', sizeMiB: 8 }] })
    const unix = await hv.prepareIncoming(spec('u'), { disks: 'mirror' })
    expect(parseMigrationAddress(unix.migrationSocket).type).toBe('unix')
    const tcp = await hv.prepareIncoming(spec('t'), { disks: 'mirror', tcp: { host: '127.0.0.1', port: 4444, nbdPort: 4445 } })
    expect(tcp).toMatchObject({ migrationSocket: 'tcp:127.0.0.1:4444', nbdSocket: 'tcp:127.0.0.1:4445', nbdExports: ['vda'] })
    await expect(hv.prepareIncoming(spec('n'), { disks: 'mirror', tcp: { host: '127.0.0.1', port: 4444 } })).rejects.toMatchObject({ code: 'ERR_INVALID_MIGRATION_PARAMS' })
  })
})
