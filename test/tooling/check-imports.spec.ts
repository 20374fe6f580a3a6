import { describe, expect, it } from 'vitest'
// @ts-expect-error — a plain .mjs tool script without type declarations
import { kitViolation, specifiers, violation } from '../../scripts/check-imports.mjs'

type Violation = (pkg: string, spec: string, declared: Set<string>) => string | undefined
const check = violation as Violation
const declared = new Set(['@meshvirt/proto', '@meshvirt/agent', '@meshvirt/mesh', 'libp2p', 'execa'])

describe('dependency direction check', () => {
  it.each([
    ['placement', 'node:fs', /pure/],
    ['placement', 'libp2p', /third-party/],
    ['placement', '@meshvirt/mesh', /may not depend/],
    ['mesh', '@meshvirt/agent', /may not depend/],
    ['hypervisor', '@meshvirt/proto', /may not depend/],
    ['cli', '@meshvirt/mesh', /may not depend/],
    ['cli', '@meshvirt/agent/src/agent.js', /deep import/],
    ['agent', 'left-pad', /not declared/]
  ])('%s importing %s is refused', (pkg, spec, why) => {
    expect(check(pkg, spec, declared)).toMatch(why)
  })

  it.each([
    ['placement', './filters/capacity.js'],
    ['mesh', '@meshvirt/proto'],
    ['mesh', 'libp2p'],
    ['cli', '@meshvirt/agent'],
    ['cli', '@meshvirt/agent/polyfill'],
    ['cli', '@meshvirt/agent/process-heap'],
    ['hypervisor', 'node:child_process']
  ])('%s importing %s is allowed', (pkg, spec) => {
    expect(check(pkg, spec, declared)).toBeUndefined()
  })

  it.each([
    ['bench/src/x.ts', '../../packages/agent/src/agent.js', /through @meshvirt/],
    ['bench/src/x.ts', '../../test/support/poll.js', /through @meshvirt/],
    ['test/e2e/x.spec.ts', '../../packages/agent/src/agent.js', /not a package's files/],
    ['test/e2e/x.spec.ts', '../../packages/hypervisor/test/guest.js', /@meshvirt\/testkit/],
    ['test/support/x.ts', '@meshvirt/agent/src/agent.js', /deep import/],
    ['test/e2e/x.spec.ts', '@meshvirt/nothing', /no such package/]
  ])('%s importing %s is refused', (file, spec, why) => {
    expect((kitViolation as (f: string, s: string) => string | undefined)(file, spec)).toMatch(why)
  })

  it.each([
    ['bench/src/x.ts', './harness.js'],
    ['bench/src/x.ts', '@meshvirt/agent'],
    ['bench/src/x.ts', '@meshvirt/testkit'],
    ['test/e2e/x.spec.ts', '../support/poll.js'],
    ['test/e2e/x.spec.ts', '@meshvirt/testkit'],
    ['test/e2e/x.spec.ts', '@meshvirt/mesh/polyfill'],
    ['test/support/examples.ts', '../../packages/cli/src/help.js']
  ])('%s importing %s is allowed', (file, spec) => {
    expect((kitViolation as (f: string, s: string) => string | undefined)(file, spec)).toBeUndefined()
  })

  it('finds static, side-effect, dynamic and re-export specifiers, ignoring comments', () => {
    const src = [
      "import { a } from './a.js'",
      "import './side.js'",
      "export * from './re.js'",
      "const m = await import('node:fs')",
      "// import { x } from 'commented-out'",
      "/* import y from 'also-commented' */"
    ].join('\n')
    expect(specifiers(src)).toEqual(['./a.js', './side.js', './re.js', 'node:fs'])
  })
})
