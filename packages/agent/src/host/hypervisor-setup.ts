import { access, constants } from 'node:fs/promises'
import { join } from 'node:path'
import { ImageSources, QemuHypervisor, SimHypervisor, probeAccelerator, type Accelerator, type Hypervisor } from '@meshvirt/hypervisor'
import type { AgentConfig } from '../config/agent-config.js'
import type { Logger } from '../log/logger.js'
import type { HypervisorFacts } from './inventory.js'

export const ACCEL_PROBE_CACHE = 'accel-probe.json'

/**
 * The hypervisor this agent drives, and the facts it advertises. The accelerator is chosen by
 * a real boot probe (cached in the data dir): /dev/kvm can exist and still never run a Linux
 * guest (nested, software-assisted KVM), so its presence proves nothing.
 */
export async function setUpHypervisor (config: AgentConfig, log: Logger): Promise<{ hypervisor: Hypervisor, facts: HypervisorFacts }> {
  if (config.hypervisor === 'sim') {
    log.warn('using the SIMULATED hypervisor: no guest will run; for control-plane benchmarks only')
    // It reads no image, but refuses the paths QEMU would: a host secret is never a boot source.
    const hypervisor = new SimHypervisor({ accel: 'tcg', images: new ImageSources({ imageDirs: 'any', dataDir: config.dataDir, secrets: [config.clusterKeyFile] }) })
    return { hypervisor, facts: { accelerator: 'tcg', qemuVersion: 'sim', machineTypes: [] } }
  }
  const accel = await chooseAccelerator(config, log)
  const hypervisor = new QemuHypervisor({
    dataDir: config.dataDir,
    accel,
    imageDirs: config.imageDirs,
    secrets: [config.clusterKeyFile],
    log: (message, fields) => { log.child('qemu').debug(message, fields) }
  })
  try {
    const fp = await hypervisor.fingerprint()
    return { hypervisor, facts: { accelerator: accel, qemuVersion: fp.qemuVersion, machineTypes: fp.machineTypes } }
  } catch (err) {
    log.warn('QEMU not usable: this host can join the mesh but cannot run VMs', { err: (err as Error).message })
    return { hypervisor, facts: { accelerator: 'none', qemuVersion: '', machineTypes: [] } }
  }
}

async function chooseAccelerator (config: AgentConfig, log: Logger): Promise<Accelerator> {
  if (config.accel !== 'auto') return config.accel
  const kvmDevice = await access('/dev/kvm', constants.R_OK | constants.W_OK).then(() => true, () => false)
  if (!kvmDevice) return 'tcg'
  if (config.probeKernel === undefined) {
    log.warn('/dev/kvm exists but no probe guest is configured (--probe-kernel): using TCG, since only a real boot proves KVM works')
    return 'tcg'
  }
  const result = await probeAccelerator({
    kernel: config.probeKernel,
    ...(config.probeInitrd !== undefined ? { initrd: config.probeInitrd } : {}),
    cacheFile: join(config.dataDir, ACCEL_PROBE_CACHE)
  })
  log.info('accelerator chosen by boot probe', { accel: result.accel, reason: result.reason, cached: result.cached })
  return result.accel
}
