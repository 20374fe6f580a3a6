import { describe, expect, it } from 'vitest'
import { SimHostNetwork, tapName } from '@meshvirt/network'
import type { NetworkConfig, PortConfig } from '@meshvirt/network'

const web: NetworkConfig = { name: 'web', vni: 7, subnet: '10.7.0.0/24', gateway: '10.7.0.1', mtu: 1450, nat: true, dhcp: true }
const www: PortConfig = { network: 'web', vmId: 'vm-www', nicIndex: 0, mac: '02:00:00:00:00:01', ip: '10.7.0.10', hostname: 'www' }
const peers = { floodTo: ['10.77.0.2'], nics: [{ mac: '02:00:00:00:00:02', ip: '10.7.0.11', hostname: 'db', underlay: '10.77.0.2' }] }

describe('SimHostNetwork', () => {
  it('records networks, ports and peers; a second identical call changes nothing', async () => {
    const host = new SimHostNetwork()
    for (let i = 0; i < 2; i++) {
      await host.ensureNetwork(web)
      expect(await host.attachPort(www)).toEqual({ tap: tapName('vm-www', 0) })
      await host.setPeers('web', peers)
    }
    const state = host.state()
    expect(state.changes).toEqual({ networks: 1, ports: 1, peers: 1 })
    expect(state.networks).toEqual([web])
    expect(state.ports).toEqual([{ ...www, tap: tapName('vm-www', 0) }])
    expect(state.peers.web).toEqual(peers)
    expect(await host.inventory()).toEqual({ networks: [{ vni: 7, bridge: 'mvbr7', vxlan: true }], ports: [{ tap: tapName('vm-www', 0), bridge: 'mvbr7' }] })
  })

  it('detach and remove are no-ops when absent, and remove takes the ports with it', async () => {
    const host = new SimHostNetwork()
    await host.detachPort('web', 'nobody', 0)
    await host.removeNetwork('web')
    await host.ensureNetwork(web)
    await host.attachPort(www)
    await host.removeNetwork('web')
    expect(host.state()).toMatchObject({ networks: [], ports: [], peers: {} })
  })

  it.each<[string, (h: SimHostNetwork) => Promise<unknown>, string]>([
    ['a port on an unknown network', async (h) => await h.attachPort({ ...www, network: 'db' }), 'network db is not on this host'],
    ['peers of an unknown network', async (h) => await h.setPeers('db', peers), 'network db is not on this host'],
    ['a second network with the same VXLAN id', async (h) => await h.ensureNetwork({ ...web, name: 'other' }), 'VXLAN id 7 is already network web'],
    ['a changed VXLAN id', async (h) => await h.ensureNetwork({ ...web, vni: 8 }), 'remove it first'],
    ['a gateway outside the subnet', async (h) => await h.ensureNetwork({ ...web, name: 'x', vni: 9, gateway: '10.9.0.1' }), 'not a host address of 10.7.0.0/24'],
    ['a subnet with host bits', async (h) => await h.ensureNetwork({ ...web, name: 'x', vni: 9, subnet: '10.7.0.1/24' }), 'did you mean'],
    ['a bad name', async (h) => await h.ensureNetwork({ ...web, name: 'Web!', vni: 9 }), 'the name must match'],
    ['an MTU too small', async (h) => await h.ensureNetwork({ ...web, mtu: 40 }), 'the MTU 40'],
    ['an address outside the subnet', async (h) => await h.attachPort({ ...www, ip: '10.8.0.5' }), 'not a host address of web'],
    ['the gateway\'s address', async (h) => await h.attachPort({ ...www, ip: '10.7.0.1' }), 'is the gateway'],
    ['an upper-case MAC', async (h) => await h.attachPort({ ...www, mac: '02:AA:00:00:00:01' }), 'lower-case MAC'],
    ['an address held by another local NIC', async (h) => await h.attachPort({ ...www, vmId: 'vm-2', mac: '02:00:00:00:00:09' }), 'is already NIC 0 of VM vm-www'],
    ['a remote NIC outside the subnet', async (h) => await h.setPeers('web', { floodTo: [], nics: [{ ...peers.nics[0]!, ip: '10.9.0.1' }] }), 'is not in 10.7.0.0/24'],
    ['a bad flood target', async (h) => await h.setPeers('web', { floodTo: ['10.77.0'], nics: [] }), 'not an IPv4 address']
  ])('refuses %s', async (_, act, message) => {
    const host = new SimHostNetwork()
    await host.ensureNetwork(web)
    await host.attachPort(www)
    await expect(act(host)).rejects.toMatchObject({ name: 'HostNetworkError', code: 'ERR_HOST_NETWORK' })
    await expect(act(host)).rejects.toThrow(message)
  })
})
