import { describe, expect, it } from 'vitest'
import { ConfigError } from '../src/config/errors.js'
import { DEFAULT_OVERCOMMIT, resolveAgentConfig } from '../src/config/agent-config.js'
import { configFromEnv } from '../src/config/env.js'
import { formatSize, parseSize } from '../src/config/size.js'

describe('parseSize', () => {
  it.each([
    ['512', 512 * 2 ** 20], ['512M', 512 * 2 ** 20], ['4GiB', 4 * 2 ** 30], ['1.5G', 1.5 * 2 ** 30],
    ['2T', 2 * 2 ** 40], ['64k', 64 * 1024], [1024, 1024 * 2 ** 20], ['0', 0]
  ])('%s → %d bytes', (text, bytes) => {
    expect(parseSize(text, 'memory')).toBe(bytes)
  })

  it.each(['', 'lots', '4X', '-1G', '1e3'])('refuses %j with a message naming the setting', (text) => {
    expect(() => parseSize(text, '--memory')).toThrow(/--memory/)
  })

  it.each([[0, '0 B'], [512 * 2 ** 20, '512 MiB'], [3.5 * 2 ** 30, '3.5 GiB'], [1536, '1.5 KiB']])('formats %d as %s', (b, s) => {
    expect(formatSize(b)).toBe(s)
  })
})

describe('resolveAgentConfig', () => {
  it('applies defaults (Nova overcommit ratios, cluster key in the data dir)', () => {
    const c = resolveAgentConfig([{ name: 'flags', input: { dataDir: '/tmp/x' } }])
    expect(c.overcommit).toEqual(DEFAULT_OVERCOMMIT)
    expect(c.clusterKeyFile).toBe('/tmp/x/cluster.key')
    expect(c.cluster).toBe('default')
    expect(c.hostReserved).toEqual({ vcpus: 0, memoryBytes: 0, diskBytes: 0 })
  })

  it('lets flags beat the environment and the environment beat the file, field by field', () => {
    const c = resolveAgentConfig([
      { name: 'file', input: { dataDir: '/file', cluster: 'file', heartbeatMs: 500, overcommit: { cpu: 2, memory: 1.5 }, hostReserved: { memory: '1G' } } },
      { name: 'environment', input: configFromEnv({ MESHVIRT_CLUSTER: 'env', MESHVIRT_LABELS: 'zone=a,rack=r1' }) },
      { name: 'flags', input: { dataDir: '/flags', overcommit: { cpu: '8', memory: undefined } } }
    ])
    expect(c.dataDir).toBe('/flags')
    expect(c.cluster).toBe('env')
    expect(c.heartbeatMs).toBe(500)
    expect(c.labels).toEqual({ zone: 'a', rack: 'r1' })
    expect(c.overcommit).toEqual({ cpu: 8, memory: 1.5, disk: 1 })
    expect(c.hostReserved.memoryBytes).toBe(2 ** 30)
  })

  it.each([
    [{ labels: ['zone'] }, /key=value/],
    [{ labels: ['bad key=x'] }, /label: key/],
    [{ overcommit: { cpu: 0 } }, /overcommit.cpu/],
    [{ overcommit: { memory: 'lots' } }, /overcommit.memory/],
    [{ heartbeatMs: 1 }, /heartbeatMs/],
    [{ cluster: 'no spaces' }, /cluster/],
    [{ logLevel: 'loud' }, /logLevel/],
    [{ hostReserved: { disk: '10 parsecs' } }, /hostReserved.disk/],
    [{ hostReserved: { vcpus: '1.5' } }, /hostReserved.vcpus: expected a whole number/]
  ])('refuses %j with a clear ConfigError', (input, message) => {
    expect(() => resolveAgentConfig([{ name: 'flags', input: input as never }])).toThrow(ConfigError)
    expect(() => resolveAgentConfig([{ name: 'flags', input: input as never }])).toThrow(message)
  })

  it('takes rebalancing knobs from the file (seconds and fractions), checks them, and leaves the rest at their defaults', () => {
    expect(resolveAgentConfig([]).balance).toEqual({})
    const c = resolveAgentConfig([{ name: 'file', input: { balance: { threshold: 0.1, holdS: 300, cooldownS: '60' } } }])
    expect(c.balance).toEqual({ threshold: 0.1, holdMs: 300_000, cooldownMs: 60_000 })
    expect(() => resolveAgentConfig([{ name: 'file', input: { balance: { threshold: 2 } } }])).toThrow(/balance.threshold: expected a number in \[0.001, 1\], got '2'/)
    expect(() => resolveAgentConfig([{ name: 'file', input: { balance: { holdS: -1 } } }])).toThrow(/balance.holdS \(seconds\)/)
    expect(() => resolveAgentConfig([{ name: 'file', input: { balance: { hold: 3 } as never } }])).toThrow(/balance: unknown knob 'hold'/)
  })

  it('names the source of an unknown setting', () => {
    expect(() => resolveAgentConfig([{ name: 'config file /etc/m.json', input: { dataDri: '/x' } as never }])).toThrow(/config file \/etc\/m.json: unknown setting 'dataDri'/)
  })
})
