import { readFileSync, statSync } from 'node:fs'

/** The binary's two programs, each bundled into one module by scripts/bundle.mjs. */
export type BundleName = 'agent' | 'cli'

/**
 * Why bundle `name` in `dir` (`<name>-bundle.js`, made by scripts/bundle.mjs) must not be run, or
 * undefined when it may: it is missing, or one of the compiled files it was made from
 * (`<name>-bundle.inputs.json`, relative to `dir`) changed after it, as after a bare `tsc -b`.
 */
export function bundleStaleness (dir: URL, name: BundleName = 'agent'): string | undefined {
  let builtAt: number
  let inputs: string[]
  try {
    builtAt = statSync(new URL(`${name}-bundle.js`, dir)).mtimeMs
    inputs = JSON.parse(readFileSync(new URL(`${name}-bundle.inputs.json`, dir), 'utf8')) as string[]
  } catch {
    return `the ${name} bundle (dist/${name}-bundle.js) is missing`
  }
  for (const input of inputs) {
    const changedAt = statSync(new URL(input, dir), { throwIfNoEntry: false })?.mtimeMs ?? 0
    if (changedAt > builtAt) return `the ${name} bundle is older than ${input.replace(/^(\.\.\/)+/, '')}`
  }
  return undefined
}
