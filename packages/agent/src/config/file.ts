import { readFile } from 'node:fs/promises'
import type { AgentConfigInput } from './agent-config.js'
import { ConfigError } from './errors.js'

/** Reads the agent's JSON config file (see scripts/meshvirt.example.json). */
export async function loadConfigFile (path: string): Promise<AgentConfigInput> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new ConfigError(`config file ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (err as Error).message}`)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw new ConfigError(`config file ${path}: not valid JSON (${(err as Error).message})`)
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError(`config file ${path}: expected a JSON object`)
  return parsed as AgentConfigInput
}
