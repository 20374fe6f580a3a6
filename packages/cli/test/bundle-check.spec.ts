import { mkdtempSync, mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { bundleStaleness } from '../src/bundle-check.js'

describe('bundleStaleness', () => {
  let root: string
  afterEach(() => { rmSync(root, { recursive: true, force: true }) })

  /** cli/dist with a bundle built at `builtAt` from ../../mesh/dist/node.js changed at `inputAt` (seconds). */
  function layout (builtAt: number, inputAt: number): URL {
    root = mkdtempSync(join(tmpdir(), 'mv-bundle-'))
    const dist = join(root, 'cli/dist')
    mkdirSync(dist, { recursive: true })
    mkdirSync(join(root, 'mesh/dist'), { recursive: true })
    writeFileSync(join(root, 'mesh/dist/node.js'), '')
    writeFileSync(join(dist, 'agent-bundle.js'), '')
    writeFileSync(join(dist, 'agent-bundle.inputs.json'), JSON.stringify(['../../mesh/dist/node.js']))
    utimesSync(join(root, 'mesh/dist/node.js'), inputAt, inputAt)
    utimesSync(join(dist, 'agent-bundle.js'), builtAt, builtAt)
    return pathToFileURL(dist + '/')
  }

  it('runs a bundle built after its inputs', () => {
    expect(bundleStaleness(layout(2000, 1000))).toBeUndefined()
  })

  it('names the input compiled after the bundle', () => {
    expect(bundleStaleness(layout(1000, 2000))).toBe('the agent bundle is older than mesh/dist/node.js')
  })

  it('says the bundle is missing when it or its inputs list is', () => {
    const dir = layout(2000, 1000)
    rmSync(new URL('agent-bundle.inputs.json', dir))
    expect(bundleStaleness(dir)).toBe('the agent bundle (dist/agent-bundle.js) is missing')
    expect(bundleStaleness(dir, 'cli')).toBe('the cli bundle (dist/cli-bundle.js) is missing')
  })
})
