import { configFromEnv } from './env.js'
import { loadConfigFile } from './file.js'
import { resolveAgentConfig, type AgentConfig, type AgentConfigInput } from './agent-config.js'

/** The shell around `resolveAgentConfig`: reads the config file (--config or MESHVIRT_CONFIG) and the environment. */
export async function loadAgentConfig (opts: { flags: AgentConfigInput, env: Record<string, string | undefined>, configFile?: string }): Promise<AgentConfig> {
  const path = opts.configFile ?? opts.env.MESHVIRT_CONFIG
  const sources: Array<{ name: string, input: AgentConfigInput }> = []
  if (path !== undefined && path !== '') sources.push({ name: `config file ${path}`, input: await loadConfigFile(path) })
  sources.push({ name: 'environment', input: configFromEnv(opts.env) })
  sources.push({ name: 'flags', input: opts.flags })
  return resolveAgentConfig(sources)
}
