import type { NetworkRecord } from '../network/network-record.js'
import type { VmResource } from '../vm/vm-preparation.js'
import { nocloudSeed, type SeedNic } from './nocloud-seed.js'

/** A live network by name (the networks feature's book); undefined when unknown here. */
export type NetworkLookup = (name: string) => NetworkRecord | undefined

/**
 * The cloud-init seed as a per-VM resource: rendered from the VM's spec alone (and the cluster's
 * network records, which every host shares), so create, an incoming migration and a promotion all
 * hand the driver the same files and the driver writes the same ISO. Only VMs whose spec has a
 * `guest` get a seed: a VM without one keeps the exact device set it had before seeds existed,
 * so it still migrates to and from agents that predate them. Nothing to release: the ISO lives
 * in the VM's dir, removed with it.
 */
export function guestConfigResource (networkOf: NetworkLookup): VmResource {
  return {
    name: 'guest-config',
    prepare: (vm, driver) => {
      const guest = vm.spec.guest
      if (guest == null) return driver
      const nics: SeedNic[] = []
      for (const nic of vm.spec.nics) {
        // Every host must write the same seed: one that does not know a NIC's network refuses (the
        // networks resource, before it, refuses such a NIC too) rather than write a seed without it.
        const network = networkOf(nic.network)
        if (network === undefined) throw new Error(`network ${nic.network} is not known on this host (deleted, or not yet heard of): the guest's seed cannot name its address`)
        if (nic.ip === '' || nic.mac === '') continue
        nics.push({ mac: nic.mac, ip: nic.ip, prefix: prefixOf(network.subnet), gateway: network.gateway, mtu: network.mtu })
      }
      const files = nocloudSeed({
        vmId: vm.id,
        vmName: vm.spec.name,
        hostname: guest.hostname,
        sshAuthorizedKeys: guest.sshAuthorizedKeys,
        userData: guest.userData,
        nics
      })
      return { ...driver, seed: { files } }
    },
    release: () => {}
  }
}

function prefixOf (subnet: string): number {
  const prefix = Number(subnet.split('/')[1] ?? '')
  return Number.isInteger(prefix) && prefix >= 0 && prefix <= 32 ? prefix : 32
}
