import { DEFAULT_DATA_DIR } from '@meshvirt/agent/run'
import type { OptionSpec } from '../command.js'

export const dataDirOption: Record<string, OptionSpec> = {
  'data-dir': { type: 'string', short: 'd', valueName: 'DIR', description: `the agent's data dir (env MESHVIRT_DATA_DIR; default ${DEFAULT_DATA_DIR})` },
  endpoint: { type: 'string', valueName: 'URL', description: 'an agent\'s API instead of the local agent: https://HOST:PORT (env MESHVIRT_ENDPOINT; token in MESHVIRT_TOKEN, or `meshvirt login`)' }
}
