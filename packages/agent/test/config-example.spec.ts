import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { resolveAgentConfig } from '../src/config/agent-config.js'
import { loadConfigFile } from '../src/config/file.js'

describe('scripts/meshvirt.example.json', () => {
  it('is a valid agent config (the example operators copy must never rot)', async () => {
    const input = await loadConfigFile(fileURLToPath(new URL('../../../scripts/meshvirt.example.json', import.meta.url)))
    const config = resolveAgentConfig([{ name: 'example', input }])
    expect(config).toMatchObject({ name: 'host-1', cluster: 'default', labels: { zone: 'a', rack: 'r1', site: 'par' }, hostReserved: { vcpus: 2, memoryBytes: 4 * 2 ** 30 }, balance: { threshold: 0.05, margin: 0.02, holdMs: 120_000, cooldownMs: 120_000 }, apiListen: '0.0.0.0:7443' })
  })
})
