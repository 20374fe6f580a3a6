import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll } from 'vitest'
import { QemuHypervisor } from '../src/index.js'
import { ensureGuest, killQemusUnder, type TestGuest } from './guest.js'
import { hypervisorTests } from './hypervisor-compliance.js'

let guest: TestGuest
beforeAll(async () => { guest = await ensureGuest() }, 180_000)

hypervisorTests('QemuHypervisor (TCG)', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'mv-hv-'))
  const hypervisor = new QemuHypervisor({ dataDir, accel: 'tcg', imageDirs: [guest.dir], acpiTimeoutMs: 5000, termTimeoutMs: 3000 })
  return {
    hypervisor,
    spec: (id) => ({ id, vcpus: 1, memoryMiB: 128, boot: { kind: 'kernel', kernel: guest.kernel, initrd: guest.initrd, cmdline: guest.cmdline }, disks: [{ name: 'vda', sizeMiB: 16 }] }),
    cleanup: async () => {
      await hypervisor.close()
      await killQemusUnder(dataDir)
      await rm(dataDir, { recursive: true, force: true })
    }
  }
})
