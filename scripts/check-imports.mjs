#!/usr/bin/env node
// Enforces the dependency direction of docs/design.md on every packages/*/src file:
//   placement, proto  → nothing of ours (placement: no node:* and no third-party code at all)
//   mesh              → proto
//   hypervisor        → nothing of ours
//   agent             → proto, placement, mesh, hypervisor
//   cli               → agent (it talks to a running agent only through its control API)
//   testkit           → mesh, hypervisor, agent (what tests and benchmarks share; never shipped)
// Also: no deep imports into another package (`@meshvirt/x/src/...`), and every third-party
// import must be declared in the importing package's own package.json.
// Tests under test/ and benchmarks under bench/ use the packages as their users do: through
// `@meshvirt/<name>` (and its public subpaths), never a relative path into packages/; what they
// share is @meshvirt/testkit. KIT_EXCEPTIONS lists the few that read a package's source on purpose.
// Exit 1 with one line per violation.
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join, dirname, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { builtinModules } from 'node:module'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

/** For each package: which @meshvirt packages it may import, and whether node:* / third-party code is allowed. */
export const RULES = {
  proto: { ours: [], node: false, thirdParty: true },
  placement: { ours: [], node: false, thirdParty: false },
  mesh: { ours: ['proto'], node: true, thirdParty: true },
  hypervisor: { ours: [], node: true, thirdParty: true },
  network: { ours: [], node: true, thirdParty: true },
  agent: { ours: ['proto', 'placement', 'mesh', 'network', 'hypervisor'], node: true, thirdParty: true },
  cli: { ours: ['agent'], node: true, thirdParty: true },
  testkit: { ours: ['mesh', 'network', 'hypervisor', 'agent'], node: true, thirdParty: true }
}
/** Public subpath exports other packages may use besides the package root. */
const PUBLIC_SUBPATHS = new Set(['polyfill', 'process-heap', 'poll', 'run'])
const IMPORT_RE = /(?:^|[\s;])(?:import|export)\s[^'"`]*?from\s*['"]([^'"]+)['"]|(?:^|[\s;(])import\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|require\(\s*['"]([^'"]+)['"]\s*\)/gm

function walk (dir) {
  let out = []
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) out = out.concat(walk(path))
    else if (/\.(ts|mts|js|mjs)$/.test(name) && !name.endsWith('.d.ts')) out.push(path)
  }
  return out
}

export function specifiers (source) {
  const found = []
  const text = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '')
  for (const m of text.matchAll(IMPORT_RE)) found.push(m[1] ?? m[2] ?? m[3] ?? m[4])
  return found
}

export function violation (pkg, spec, declared) {
  const rule = RULES[pkg]
  if (spec.startsWith('.')) return undefined
  const isNode = spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0])
  if (isNode) return rule.node ? undefined : `${spec}: @meshvirt/${pkg} must not use Node built-ins (it is pure)`
  if (spec.startsWith('@meshvirt/')) {
    const [, name, ...rest] = spec.split('/')
    if (name === pkg) return `${spec}: import your own package by relative path`
    if (!rule.ours.includes(name)) return `${spec}: @meshvirt/${pkg} may not depend on @meshvirt/${name} (allowed: ${rule.ours.join(', ') || 'none'})`
    if (rest.length > 0 && !(rest.length === 1 && PUBLIC_SUBPATHS.has(rest[0]))) return `${spec}: deep import into @meshvirt/${name} internals`
    if (!declared.has(`@meshvirt/${name}`)) return `${spec}: not declared in packages/${pkg}/package.json`
    return undefined
  }
  if (!rule.thirdParty) return `${spec}: @meshvirt/${pkg} must not use third-party packages (it is pure)`
  const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]
  if (!declared.has(name)) return `${spec}: not declared in packages/${pkg}/package.json dependencies`
  return undefined
}

/** test/ or bench/ files that import a package's source on purpose, and why. */
export const KIT_EXCEPTIONS = {
  'test/tooling/examples.spec.ts': 'reads the CLI\'s command table to find every --help example',
  'test/support/examples.ts': 'reads the CLI\'s command table to find every --help example'
}

/**
 * Why `spec`, imported by `file` (repository-relative, under test/ or bench/), breaks the kit's rule;
 * undefined when it does not.
 */
export function kitViolation (file, spec) {
  if (spec.startsWith('@meshvirt/')) {
    const [, name, ...rest] = spec.split('/')
    if (!Object.hasOwn(RULES, name)) return `${spec}: no such package`
    if (rest.length > 0 && !(rest.length === 1 && PUBLIC_SUBPATHS.has(rest[0]))) return `${spec}: deep import into @meshvirt/${name} internals`
    return undefined
  }
  if (!spec.startsWith('.')) return undefined
  const target = join(dirname(file), spec).split('\\').join('/')
  if (file.startsWith('bench/') && !target.startsWith('bench/')) return `${spec}: a benchmark uses the packages through @meshvirt/*, not by path`
  if (target.startsWith('packages/') && !Object.hasOwn(KIT_EXCEPTIONS, file)) return `${spec}: a test uses @meshvirt/* (helpers: @meshvirt/testkit), not a package's files by path (or list the file in KIT_EXCEPTIONS)`
  return undefined
}

function main () {
  const problems = []
  let files = 0
  for (const pkg of Object.keys(RULES)) {
    const dir = join(root, 'packages', pkg)
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
    const declared = new Set(Object.keys({ ...manifest.dependencies, ...manifest.peerDependencies }))
    for (const file of walk(join(dir, 'src'))) {
      files++
      for (const spec of specifiers(readFileSync(file, 'utf8'))) {
        const why = violation(pkg, spec, declared)
        if (why !== undefined) problems.push(`${relative(root, file)}: ${why}`)
      }
    }
  }
  for (const top of ['test', 'bench/src']) {
    for (const file of walk(join(root, top))) {
      files++
      const rel = relative(root, file).split('\\').join('/')
      for (const spec of specifiers(readFileSync(file, 'utf8'))) {
        const why = kitViolation(rel, spec)
        if (why !== undefined) problems.push(`${rel}: ${why}`)
      }
    }
  }
  for (const p of problems) console.error(`forbidden import: ${p}`)
  if (problems.length > 0) process.exit(1)
  console.log(`import check: ${files} source, test and bench files follow the dependency direction`)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main()
