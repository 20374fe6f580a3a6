/**
 * Guests with NICs under TCG, on taps of one Linux bridge inside a network namespace of their own
 * (netns-lab.ts): QEMU runs in that namespace through a driver child (fixtures/netns-driver.mjs).
 * Two guests with static addresses ping each other (one with a seed CD-ROM: the guest finds its own
 * MAC in the seed's network-config, and not another); a guest takes its address from dnsmasq by
 * DHCP; a guest migrated to another tap on the same bridge keeps answering ping, and the bridge
 * learns its MAC's new port at once (QEMU's announcements). A missing tap is refused before QEMU runs.
 * Skipped without root (network namespaces).
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { IncomingCompletion, IncomingMigration, MigrationResult, VmInfo } from '../src/index.js'
import { REPO, ensureGuest, killQemusUnder, waitForSerial, type TestGuest } from '@meshvirt/testkit'
import { BRIDGE, NamespacedDrivers, NetnsLab, canMakeNamespaces, nicSpec, removeStaleLabs, typeOnSerial } from './netns-lab.js'

const SUBNET = '10.213.0'
const BOOT_TIMEOUT_MS = 45_000
const TAPS = ['mvhn-a0', 'mvhn-b0', 'mvhn-c0', 'mvhn-d0', 'mvhn-e0', 'mvhn-f0']
const MAC = { a: '02:4d:56:00:00:0a', b: '02:4d:56:00:00:0b', c: '02:4d:56:00:00:0c', d: '02:4d:56:00:00:0d', f: '02:4d:56:00:00:0f' }
/** Named in a seed's network-config, on no NIC of the guest. */
const ABSENT_MAC = '02:4d:56:00:00:ee'
const namespaces = await canMakeNamespaces()

let guest: TestGuest
let root: string
let lab: NetnsLab
let drivers: NamespacedDrivers
const dataDirs: string[] = []

function dataDir (name: string): string {
  const dir = join(root, name)
  dataDirs.push(dir)
  return dir
}

async function size (path: string): Promise<number> {
  return (await stat(path).catch(() => ({ size: 0 }))).size
}

describe.skipIf(!namespaces)('guests with NICs on a bridge in a network namespace (TCG)', () => {
  beforeAll(async () => {
    await removeStaleLabs()
    guest = await ensureGuest()
    root = await mkdtemp(join(tmpdir(), 'mv-nic-'))
    // The driver child runs the built package.
    await execa('npx', ['tsc', '-b', 'packages/hypervisor'], { cwd: REPO })
    lab = new NetnsLab(SUBNET)
    await lab.useBusybox(guest.dir, join(root, 'busybox'))
    await lab.up()
    for (const tap of TAPS) await lab.addTap(tap)
    drivers = new NamespacedDrivers(lab, [guest.dir])
  }, 240_000)

  afterEach(async () => {
    for (const dir of dataDirs) await killQemusUnder(dir)
  })

  afterAll(async () => {
    await drivers?.close()
    for (const dir of dataDirs) await killQemusUnder(dir)
    await lab?.down()
    if (root !== undefined) await rm(root, { recursive: true, force: true })
  })

  it('refuses a NIC whose tap is missing, or is no tap, before QEMU runs', async () => {
    const dir = dataDir('refuse')
    const vm = await drivers.call<VmInfo>(dir, 'create', nicSpec('lost', guest, '', [[MAC.a, 'mvhn-none0']]))
    await expect(drivers.call(dir, 'start', 'lost')).rejects.toMatchObject({ code: 'ERR_TAP_MISSING', message: expect.stringContaining('nics[0].tap mvhn-none0 does not exist') })
    expect(await size(vm.paths.qemuLog)).toBe(0)
    expect((await drivers.call<VmInfo>(dir, 'inspect', 'lost')).state).toBe('created')
    await drivers.call(dir, 'destroy', 'lost')

    await drivers.call(dir, 'create', nicSpec('bridged', guest, '', [[MAC.a, BRIDGE]]))
    await expect(drivers.call(dir, 'start', 'bridged')).rejects.toMatchObject({ code: 'ERR_TAP_MISSING', message: expect.stringContaining('is not a tap') })

    await expect(drivers.call(dir, 'prepareIncoming', nicSpec('arriving', guest, '', [[MAC.a, 'mvhn-none1']]), { disks: 'mirror' }))
      .rejects.toMatchObject({ code: 'ERR_TAP_MISSING' })
    await expect(drivers.call(dir, 'inspect', 'arriving')).rejects.toMatchObject({ code: 'ERR_VM_NOT_FOUND' })
  })

  it('two guests with static addresses ping each other over the bridge', async () => {
    const dir = dataDir('ping')
    // A seed as the agent renders it for two NICs (agent/src/guest/nocloud-seed.ts); the guest has one.
    const networkConfig = ['version: 2', 'ethernets:', ...[MAC.a, ABSENT_MAC].flatMap((mac, i) => [`  nic${i}:`, '    match:', `      macaddress: "${mac}"`, `    set-name: "eth${i}"`])].join('\n') + '\n'
    const seed = { files: [{ name: 'meta-data', content: 'instance-id: "ping-a"\nlocal-hostname: "ping-a"\n' }, { name: 'network-config', content: networkConfig }] }
    const a = await drivers.call<VmInfo>(dir, 'create', { ...nicSpec('ping-a', guest, `meshvirt.ip=${SUBNET}.11/24`, [[MAC.a, 'mvhn-a0']]), seed })
    const b = await drivers.call<VmInfo>(dir, 'create', nicSpec('ping-b', guest, `meshvirt.ip=${SUBNET}.12/24,${SUBNET}.1`, [[MAC.b, 'mvhn-b0']]))
    await drivers.call(dir, 'start', 'ping-a')
    await drivers.call(dir, 'start', 'ping-b')
    await waitForSerial(a.paths.serialLog, new RegExp(`MESHVIRT-NET eth0 ${SUBNET}\\.11/24`), BOOT_TIMEOUT_MS)
    await waitForSerial(b.paths.serialLog, new RegExp(`MESHVIRT-NET eth0 ${SUBNET}\\.12/24`), BOOT_TIMEOUT_MS)
    await waitForSerial(a.paths.serialLog, /guest# /, BOOT_TIMEOUT_MS)
    await waitForSerial(a.paths.serialLog, /MESHVIRT-SEED done/, BOOT_TIMEOUT_MS)
    const seen = [...(await readFile(a.paths.serialLog, 'utf8')).matchAll(/MESHVIRT-SEED nic (\S+) (\w+)/g)].map((m) => `${m[1]} ${m[2]}`)
    expect(seen).toEqual([`${MAC.a} present`, `${ABSENT_MAC} absent`])

    const from = await size(a.paths.serialLog)
    const answer = await typeOnSerial(a.paths.serialSocket, `ping -c 3 ${SUBNET}.12`, async () =>
      await waitForSerial(a.paths.serialLog, /(\d+) packets transmitted, (\d+) packets received/, 30_000, from))
    expect(answer.slice(1)).toEqual(['3', '3'])
    // And from the bridge's side of the namespace; b's default route is the bridge's address.
    await lab.ping('-c', '1', '-W', '5', `${SUBNET}.12`)
    const routeFrom = await size(b.paths.serialLog)
    await typeOnSerial(b.paths.serialSocket, 'ip route', async () =>
      await waitForSerial(b.paths.serialLog, new RegExp(`default via ${SUBNET}\\.1 dev eth0`), 15_000, routeFrom))
  }, 120_000)

  it('a guest takes its address from dnsmasq by DHCP, without delaying its ready marker', async () => {
    const dir = dataDir('dhcp')
    await lab.dnsmasq(dir, [{ mac: MAC.c, ip: `${SUBNET}.50` }])
    const vm = await drivers.call<VmInfo>(dir, 'create', nicSpec('dhcp', guest, '', [[MAC.c, 'mvhn-c0']]))
    const t0 = performance.now()
    await drivers.call(dir, 'start', 'dhcp')
    await waitForSerial(vm.paths.serialLog, /MESHVIRT-READY/, BOOT_TIMEOUT_MS)
    const ready = performance.now()
    await waitForSerial(vm.paths.serialLog, new RegExp(`MESHVIRT-NET eth0 ${SUBNET}\\.50/24`), 30_000)
    const bound = performance.now()
    console.log(`DHCP guest: start → ready ${(ready - t0).toFixed(0)} ms, ready → MESHVIRT-NET ${(bound - ready).toFixed(0)} ms`)
    const text = await readFile(vm.paths.serialLog, 'utf8')
    expect(text.indexOf('MESHVIRT-READY')).toBeLessThan(text.indexOf('MESHVIRT-NET'))
    // The lease's MTU and router are applied (dnsmasq sends option 26 as configured in the lab).
    const from = await size(vm.paths.serialLog)
    await typeOnSerial(vm.paths.serialSocket, 'ip route; ip link show eth0', async () => {
      await waitForSerial(vm.paths.serialLog, new RegExp(`default via ${SUBNET}\\.1 dev eth0`), 15_000, from)
      await waitForSerial(vm.paths.serialLog, /eth0: .* mtu 1400/, 15_000, from)
    })
    await lab.ping('-c', '1', '-W', '5', `${SUBNET}.50`)
  }, 120_000)

  it('a guest migrated to another tap on the bridge keeps answering ping; its MAC moves at once', async () => {
    const srcDir = dataDir('mig-src')
    const dstDir = dataDir('mig-dst')
    const spec = nicSpec('mover', guest, `meshvirt.ip=${SUBNET}.21/24`, [[MAC.d, 'mvhn-d0']])
    // Same machine, same MAC; only the host-side tap differs (two taps cannot share a name on one host).
    const there = { ...spec, nics: [{ mac: MAC.d, tap: 'mvhn-e0' }] }
    const vm = await drivers.call<VmInfo>(srcDir, 'create', spec)
    await drivers.call(srcDir, 'start', 'mover')
    await waitForSerial(vm.paths.serialLog, new RegExp(`MESHVIRT-NET eth0 ${SUBNET}\\.21/24`), BOOT_TIMEOUT_MS)
    await lab.ping('-c', '1', '-W', '5', `${SUBNET}.21`)
    expect(await fdbPort(MAC.d)).toBe('mvhn-d0')

    // 20 pings a second through the whole hand-over: the longest run of lost ones is the blackout.
    const pinger = lab.ping('-i', '0.05', `${SUBNET}.21`)
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const incoming = await drivers.call<IncomingMigration>(dstDir, 'prepareIncoming', there, { disks: 'mirror' })
    const result = await drivers.call<MigrationResult>(srcDir, 'migrateOut', 'mover', { migrationSocket: incoming.migrationSocket, timeoutMs: 60_000 })
    // Both ends paused: QEMU's own announcement when the stream loaded may already have moved it.
    const whilePaused = await fdbPort(MAC.d)
    const { info } = await drivers.call<IncomingCompletion>(dstDir, 'completeIncoming', 'mover')
    const resumed = performance.now()
    expect(info.state).toBe('running')
    // The bridge learns the MAC on the destination's tap at once: from QEMU's announcements (and the
    // guest's replies to the pings; with this QEMU either alone is enough, see src/migration/announce.ts).
    let port = await fdbPort(MAC.d)
    while (port !== 'mvhn-e0' && performance.now() - resumed < 2000) port = await fdbPort(MAC.d)
    const learntMs = performance.now() - resumed
    expect(port).toBe('mvhn-e0')
    await drivers.call(srcDir, 'completeOutgoing', 'mover')
    await new Promise((resolve) => setTimeout(resolve, 2000))
    pinger.kill('SIGINT')
    // Interrupted, and with losses, ping exits non-zero: the replies it printed are what counts.
    const pinged = await pinger.catch((err: { stdout?: unknown }) => err)
    const seqs = [...String(pinged.stdout).matchAll(/seq=(\d+)/g)].map((m) => Number(m[1]))
    const gap = Math.max(...seqs.slice(1).map((s, i) => s - (seqs[i] as number) - 1))
    console.log(`NIC migration: downtime ${result.downtimeMs} ms (QEMU), total ${result.totalMs} ms; MAC on ${whilePaused ?? 'no port'} while paused, on the new tap ${learntMs.toFixed(0)} ms after resume; ${seqs.length} replies, longest loss ${gap} pings (×50 ms)`)
    expect(seqs.length).toBeGreaterThan(20)
    // QEMU took the announce-self after the resume (the driver logs a refusal and goes on).
    expect(drivers.stderr).toMatch(/vm migrated in .*"vm":"mover"/)
    expect(drivers.stderr).not.toMatch(/announce-self failed/)
    await lab.ping('-c', '3', '-W', '2', `${SUBNET}.21`)
  }, 150_000)
})

/** The bridge port the bridge has learnt `mac` on, or undefined. */
async function fdbPort (mac: string): Promise<string | undefined> {
  const fdb = await lab.exec('bridge', 'fdb', 'show', 'br', BRIDGE)
  return fdb.split('\n').find((l) => l.startsWith(`${mac} dev `))?.split(' ')[2]
}
