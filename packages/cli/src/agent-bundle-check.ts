import { readFileSync, statSync } from 'node:fs'

/**
 * Why the agent bundle in `dir` (agent-bundle.js, made by scripts/bundle-agent.mjs) must not be
 * run, or undefined when it may: it is missing, or one of the compiled files it was made from
 * (agent-bundle.inputs.json, relative to `dir`) changed after it, as after a bare `tsc -b`.
 */
export function bundleStaleness (dir: URL): string | undefined {
  let builtAt: number
  let inputs: string[]
  try {
    builtAt = statSync(new URL('agent-bundle.js', dir)).mtimeMs
    inputs = JSON.parse(readFileSync(new URL('agent-bundle.inputs.json', dir), 'utf8')) as string[]
  } catch {
    return 'the agent bundle (dist/agent-bundle.js) is missing'
  }
  for (const input of inputs) {
    const changedAt = statSync(new URL(input, dir), { throwIfNoEntry: false })?.mtimeMs ?? 0
    if (changedAt > builtAt) return `the agent bundle is older than ${input.replace(/^(\.\.\/)+/, '')}`
  }
  return undefined
}
