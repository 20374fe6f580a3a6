/**
 * What `meshvirt agent` needs, and nothing else: the package's index also exports the API client,
 * the OpenAPI document and the views of every CLI command, which an agent process never uses
 * (a process pays for every module it loads: its source, bytecode and closures stay on the heap).
 */
export { runAgent, CONTROL_SOCKET, AGENT_INFO_FILE, type RunAgentOptions, type RunningAgent } from './agent.js'
export { DEFAULT_DATA_DIR, type AgentConfig, type AgentConfigInput } from './config/agent-config.js'
export { loadAgentConfig } from './config/load.js'
