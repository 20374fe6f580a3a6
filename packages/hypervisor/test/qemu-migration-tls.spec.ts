/**
 * The direct path: QEMU to QEMU over TCP with QEMU's own TLS and a one-time pre-shared key, RAM
 * over multifd channels and the disk mirror over NBD with the same credentials (TCG guests). A
 * third party that reaches the ports without the key gets nothing, and the real migration still
 * succeeds; a source with another key fails and its guest runs on; the key file lives 0600 in the
 * VM dir only while the migration does.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { createServer, connect as tcpConnect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import { execa } from 'execa'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { QemuHypervisor, type VmSpec } from '../src/index.js'
import { ensureGuest, killQemusUnder, lastCounter, waitForSerial, type TestGuest } from '@meshvirt/testkit'

const BOOT_TIMEOUT_MS = 45_000
let guest: TestGuest
let root: string
let srcDir: string
let dstDir: string
const drivers: QemuHypervisor[] = []

function driver (dataDir: string): QemuHypervisor {
  const hv = new QemuHypervisor({ dataDir, accel: 'tcg', imageDirs: [guest.dir] })
  drivers.push(hv)
  return hv
}

function spec (id: string): VmSpec {
  return {
    id, vcpus: 1, memoryMiB: 128,
    boot: { kind: 'kernel', kernel: guest.kernel, initrd: guest.initrd, cmdline: `${guest.cmdline} meshvirt.dirty_kib=1024 meshvirt.disk_kib=16` },
    disks: [{ name: 'vda', sizeMiB: 16 }]
  }
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => { const { port } = s.address() as { port: number }; s.close(() => { resolve(port) }) })
  })
}

const key = (): { pskHex: string } => ({ pskHex: randomBytes(32).toString('hex') })

/** A plaintext client: connects, sends bytes that are no TLS hello, and reports what came back until the server closed. */
async function plaintextIntruder (port: number): Promise<{ closedByServer: boolean, received: Buffer }> {
  return await new Promise((resolve) => {
    const chunks: Buffer[] = []
    const s = tcpConnect(port, '127.0.0.1', () => { s.write(Buffer.from('QEVM\0\0\0\x03hello, is anyone there?\r\n')) })
    const timer = setTimeout(() => { s.destroy(); resolve({ closedByServer: false, received: Buffer.concat(chunks) }) }, 10_000)
    s.on('data', (c: Buffer) => chunks.push(c))
    s.on('error', () => {})
    s.on('close', () => { clearTimeout(timer); resolve({ closedByServer: true, received: Buffer.concat(chunks) }) })
  })
}

/** A TLS-PSK client with the wrong key: the handshake must fail (no secureConnect). */
async function wrongKeyIntruder (port: number): Promise<{ handshook: boolean, error?: string }> {
  return await new Promise((resolve) => {
    const s = tlsConnect({
      host: '127.0.0.1', port, maxVersion: 'TLSv1.2', ciphers: 'PSK-AES256-GCM-SHA384:PSK-AES128-GCM-SHA256:ECDHE-PSK-AES128-CBC-SHA256',
      checkServerIdentity: () => undefined,
      pskCallback: () => ({ identity: 'meshvirt', psk: randomBytes(32) })
    })
    const timer = setTimeout(() => { s.destroy(); resolve({ handshook: false, error: 'no answer in 10 s' }) }, 10_000)
    s.on('secureConnect', () => { clearTimeout(timer); s.destroy(); resolve({ handshook: true }) })
    s.on('error', (err) => { clearTimeout(timer); s.destroy(); resolve({ handshook: false, error: err.message }) })
  })
}

beforeAll(async () => {
  guest = await ensureGuest()
  root = await mkdtemp(join(tmpdir(), 'mv-tls-'))
}, 240_000)

afterEach(async () => {
  for (const hv of drivers.splice(0)) await hv.close()
  await killQemusUnder(srcDir)
  await killQemusUnder(dstDir)
})

afterAll(async () => {
  await rm(root, { recursive: true, force: true })
})

describe('direct migration with QEMU TLS-PSK, multifd and NBD over TLS (TCG)', () => {
  it('moves the guest and its disk; intruders without the key get nothing; the key lives only as long as the migration', async () => {
    srcDir = join(root, 'a1'); dstDir = join(root, 'b1')
    const src = driver(srcDir)
    const dst = driver(dstDir)
    const vm = await src.create(spec('secret'))
    await src.start('secret')
    await waitForSerial(vm.paths.serialLog, /MESHVIRT-COUNTER 3\b/, BOOT_TIMEOUT_MS)

    const tls = key()
    const [port, nbdPort] = [await freePort(), await freePort()]
    const incoming = await dst.prepareIncoming(spec('secret'), { disks: 'mirror', tcp: { host: '127.0.0.1', port, nbdPort, tls, multifdChannels: 2 } })
    const keyFile = join(dstDir, 'vms', 'secret', 'tls-in', 'keys.psk')
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600)
    expect((await stat(join(dstDir, 'vms', 'secret', 'tls-in'))).mode & 0o777).toBe(0o700)
    expect(await readFile(keyFile, 'utf8')).toBe(`meshvirt:${tls.pskHex}\n`)

    // Third parties first, while QEMU waits for its real source.
    const plain = await plaintextIntruder(port)
    expect(plain.closedByServer).toBe(true)
    expect(plain.received.includes(Buffer.from('QEVM'))).toBe(false)
    const wrong = await wrongKeyIntruder(port)
    expect(wrong.handshook).toBe(false)
    const nbdPlain = await execa('qemu-img', ['info', `nbd://127.0.0.1:${nbdPort}/vda`], { reject: false, timeout: 20_000 })
    expect(nbdPlain.exitCode).not.toBe(0)
    expect(nbdPlain.stderr).toMatch(/TLS/i)
    const wrongDir = join(root, 'wrong-key')
    await execa('mkdir', ['-p', wrongDir])
    await execa('sh', ['-c', `umask 077; echo "meshvirt:${key().pskHex}" > ${wrongDir}/keys.psk`])
    const nbdWrong = await execa('qemu-img', ['info', '--object', `tls-creds-psk,id=t,endpoint=client,username=meshvirt,dir=${wrongDir}`,
      '--image-opts', `driver=nbd,server.type=inet,server.host=127.0.0.1,server.port=${nbdPort},export=vda,tls-creds=t`], { reject: false, timeout: 20_000 })
    expect(nbdWrong.exitCode).not.toBe(0)
    // QEMU logged the refusals and still listens.
    expect((await dst.inspect('secret')).migration).toBe('incoming')

    const result = await src.migrateOut('secret', { migrationSocket: incoming.migrationSocket, nbdSocket: incoming.nbdSocket, tls, multifdChannels: 2, downtimeLimitMs: 100, timeoutMs: 60_000 })
    // The source's copy of the key went as soon as QEMU had read it.
    await expect(stat(join(srcDir, 'vms', 'secret', 'tls-out'))).rejects.toMatchObject({ code: 'ENOENT' })
    const before = await lastCounter(vm.paths.serialLog)
    const { info, resumedAt } = await dst.completeIncoming('secret')
    await expect(stat(keyFile)).rejects.toMatchObject({ code: 'ENOENT' })
    await src.completeOutgoing('secret')
    const next = await waitForSerial(info.paths.serialLog, /MESHVIRT-COUNTER (\d+)/, 15_000)
    expect(Number(next[1])).toBeGreaterThanOrEqual(before)
    await waitForSerial(info.paths.serialLog, new RegExp(`MESHVIRT-COUNTER ${Number(next[1]) + 3}\\b`), 15_000)
    expect(await readFile(info.paths.serialLog, 'utf8')).not.toMatch(/MESHVIRT-READY/)
    expect(result.diskBytes).toBeGreaterThanOrEqual(16 * 1024 * 1024)
    console.log(`direct TLS, multifd 2, 128 MiB + 16 MiB disk: QEMU downtime ${result.downtimeMs} ms, pause ${(resumedAt - result.stoppedAt).toFixed(1)} ms, ram ${result.ramMs} ms, mirror ${result.mirrorMs} ms, total ${result.totalMs} ms; intruders: plaintext closed, wrong key: ${wrong.error ?? ''}`)
    await dst.kill('secret')
  }, 150_000)

  it('a source with another key is refused: the migration fails, the guest runs on at the source, nothing moved', async () => {
    srcDir = join(root, 'a2'); dstDir = join(root, 'b2')
    const src = driver(srcDir)
    const dst = driver(dstDir)
    const vm = await src.create(spec('outsider'))
    await src.start('outsider')
    await waitForSerial(vm.paths.serialLog, /MESHVIRT-COUNTER 3\b/, BOOT_TIMEOUT_MS)
    const [port, nbdPort] = [await freePort(), await freePort()]
    const incoming = await dst.prepareIncoming(spec('outsider'), { disks: 'mirror', tcp: { host: '127.0.0.1', port, nbdPort, tls: key(), multifdChannels: 2 } })
    await expect(src.migrateOut('outsider', { migrationSocket: incoming.migrationSocket, nbdSocket: incoming.nbdSocket, tls: key(), multifdChannels: 2, timeoutMs: 30_000 }))
      .rejects.toMatchObject({ code: 'ERR_MIGRATION_FAILED' })
    await dst.abortIncoming('outsider')
    await expect(stat(join(dstDir, 'vms', 'outsider'))).rejects.toMatchObject({ code: 'ENOENT' })
    expect((await src.inspect('outsider')).state).toBe('running')
    const seen = await lastCounter(vm.paths.serialLog)
    await waitForSerial(vm.paths.serialLog, new RegExp(`MESHVIRT-COUNTER ${seen + 2}\\b`), 15_000)
    await src.kill('outsider')
  }, 150_000)
})
