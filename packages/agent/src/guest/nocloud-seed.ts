/**
 * The files of a cloud-init NoCloud seed (the `cidata` volume) for one VM: a pure function of
 * the VM's id, name, guest config and NICs, so every host that rebuilds a VM's seed (its creator,
 * a migration or failover destination) writes the same bytes.
 *
 * - `meta-data`: `instance-id` is the VM id, which never changes when the VM moves, so cloud-init
 *   runs its once-per-instance modules only on the first boot, wherever the VM boots later.
 *   SSH keys go in meta-data `public-keys`: cloud-init's cc_ssh adds the datasource's keys *and*
 *   any `ssh_authorized_keys` from user-data to the default user, so the operator's own user-data
 *   is passed untouched and still gets the keys.
 * - `user-data`: as given; default a minimal `#cloud-config`.
 * - `network-config` (version 2) only when the VM has NICs: each NIC matched by MAC, a static
 *   address, the default gateway on the first NIC only.
 *
 * All values are written as YAML double-quoted scalars (JSON string syntax is valid YAML), keys
 * in a fixed order: the output is byte-stable.
 */

/** What one NIC of the VM needs in network-config; from the NIC and its network's record. */
export interface SeedNic {
  mac: string
  /** The NIC's address, without prefix. */
  ip: string
  /** The network's prefix length (the `/24` of its subnet). */
  prefix: number
  /** The network's gateway; empty for none. */
  gateway: string
  /** 0: leave the guest's default. */
  mtu: number
  nameservers?: string[]
}

export interface SeedInput {
  vmId: string
  vmName: string
  hostname?: string
  sshAuthorizedKeys?: string[]
  userData?: string
  nics?: SeedNic[]
}

export interface SeedFile {
  name: string
  content: string
}

export const DEFAULT_USER_DATA = '#cloud-config\n{}\n'

/** The seed's files, sorted by name. */
export function nocloudSeed (input: SeedInput): SeedFile[] {
  const files: SeedFile[] = [{ name: 'meta-data', content: metaData(input) }]
  const nics = input.nics ?? []
  if (nics.length > 0) files.push({ name: 'network-config', content: networkConfig(nics) })
  const userData = input.userData ?? ''
  files.push({ name: 'user-data', content: userData === '' ? DEFAULT_USER_DATA : userData })
  return files
}

const q = (s: string): string => JSON.stringify(s)

function metaData (input: SeedInput): string {
  const hostname = (input.hostname ?? '') === '' ? input.vmName : input.hostname ?? ''
  const lines = [`instance-id: ${q(input.vmId)}`, `local-hostname: ${q(hostname)}`]
  const keys = input.sshAuthorizedKeys ?? []
  if (keys.length > 0) {
    lines.push('public-keys:')
    for (const k of keys) lines.push(`  - ${q(k.trim())}`)
  }
  return lines.join('\n') + '\n'
}

function networkConfig (nics: SeedNic[]): string {
  const lines = ['version: 2', 'ethernets:']
  nics.forEach((nic, i) => {
    lines.push(`  nic${i}:`, '    match:', `      macaddress: ${q(nic.mac.toLowerCase())}`)
    lines.push(`    set-name: ${q(`eth${i}`)}`)
    lines.push('    addresses:', `      - ${q(`${nic.ip}/${nic.prefix}`)}`)
    // `gateway4`, not `routes: [{to: default}]`: Debian 12's cloud-init (22.4.2) fails its network
    // stage on that route, "Address default is not a valid ip address" (read in its network_state.py;
    // `to: default` came with canonical/cloud-init#6391, 2025), so the guest got no network at all.
    // A `to: 0.0.0.0/0` route is rendered as `post-up route add` for ifupdown, which needs net-tools.
    // `gateway4` becomes ifupdown's `gateway` (ip route), and netplan and every renderer still read it.
    if (i === 0 && nic.gateway !== '') lines.push(`    gateway4: ${q(nic.gateway)}`)
    const ns = nic.nameservers ?? []
    if (ns.length > 0) {
      lines.push('    nameservers:', '      addresses:')
      for (const a of ns) lines.push(`        - ${q(a)}`)
    }
    if (nic.mtu > 0) lines.push(`    mtu: ${nic.mtu}`)
  })
  return lines.join('\n') + '\n'
}
