/**
 * `meshvirt agent` and every other command each run one bundled module (scripts/bundle.mjs), built
 * by `npm run build` beside bin.js. The agent's bundle must share the one process-wide HeapMode that
 * bin.js loads first, and the fence watchdog's entry must sit beside it (it is spawned from there).
 */
import { existsSync, readFileSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { MESHVIRT_BIN, meshvirt } from '@meshvirt/testkit'

const dist = dirname(MESHVIRT_BIN)

describe('the agent bundle', () => {
  it('sits beside bin.js with the watchdog entry, and imports the shared heap mode instead of a copy', () => {
    const bundle = readFileSync(join(dist, 'agent-bundle.js'), 'utf8')
    expect(bundle).toContain('@meshvirt/agent/heap-mode')
    expect(bundle).not.toMatch(/class HeapMode\b/)
    expect(existsSync(join(dist, 'watchdog-process.js'))).toBe(true)
    // The bundle carries the agent, not the operator commands it never runs.
    expect(bundle).not.toContain('meshvirt vm migrate NAME|ID')
  })

  it('answers `meshvirt agent --help` from the bundle', async () => {
    const r = await meshvirt(['agent', '--help'])
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toContain('meshvirt agent — run the host agent')
    // Not the fallback to the separate modules (a missing or stale bundle says so here).
    expect(r.stderr).not.toContain('running the separate modules')
  })

  it('builds the CLI into its own bundle, fresh, which answers a command as the separate modules do', async () => {
    // Built from main.js as compiled last (bin.js would otherwise fall back to the separate modules).
    expect(statSync(join(dist, 'cli-bundle.js')).mtimeMs).toBeGreaterThanOrEqual(statSync(join(dist, 'main.js')).mtimeMs)
    expect(JSON.parse(readFileSync(join(dist, 'cli-bundle.inputs.json'), 'utf8'))).toContain('main.js')
    const cli = readFileSync(join(dist, 'cli-bundle.js'), 'utf8')
    expect(cli).toContain('meshvirt vm migrate NAME|ID')
    expect(cli).toContain('@meshvirt/agent/heap-mode')
    const r = await meshvirt(['vm', '--help'])
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toContain('meshvirt vm')
    expect(r.stderr).toBe('')
  })
})
