/**
 * @packageDocumentation
 *
 * The meshvirt host agent: configuration, host state in the data dir, inventory, capacity
 * gossip through @meshvirt/mesh, and the local control API the `meshvirt` CLI talks to.
 *
 * @example
 * ```ts
 * import { loadAgentConfig, runAgent } from '@meshvirt/agent'
 * const config = await loadAgentConfig({ flags: { dataDir: '/var/lib/meshvirt' }, env: process.env })
 * const agent = await runAgent(config)
 * console.log(agent.hostId, agent.addrs)
 * await agent.stop()
 * ```
 */
export { runAgent, CONTROL_SOCKET, AGENT_INFO_FILE, type RunAgentOptions, type RunningAgent } from './agent.js'
export { resolveAgentConfig, parseLabels, DEFAULT_DATA_DIR, DEFAULT_OVERCOMMIT, type AgentConfig, type AgentConfigInput, type LogLevel } from './config/agent-config.js'
export { loadAgentConfig } from './config/load.js'
export { configFromEnv, ENV_VARS } from './config/env.js'
export { ConfigError } from './config/errors.js'
export { parseSize, formatSize } from './config/size.js'
export { ControlClient, DEFAULT_CONTROL_TIMEOUT_MS, type AgentClient } from './control/control-client.js'
export { ApiClient } from './api/api-client.js'
export { API_ROUTES, matchRoute } from './api/api-routes.js'
export { openApiDocument, FIXED_ROUTES } from './api/openapi.js'
export { clusterIdentity, clusterCaOf, issueToken, verifyToken, readTokenClaims, ROLES, REQUIRED_ROLE, type Role, type UserClaims } from './access/index.js'
export { ControlError, AgentUnreachableError } from './control/errors.js'
export { hostRows, type HostRow } from './control/host-rows.js'
export { vmView, type VmView } from './control/vm-view.js'
export { networkView, type NetworkView } from './control/network-view.js'
export { groupView, type GroupView } from './control/group-view.js'
export { imageView, type ImageView } from './control/image-view.js'
export { networkStateDir } from './host/host-network-setup.js'
export { Broker, type BrokerResult } from './negotiate/broker.js'
export type { BrokerStats, PlacementTiming } from './negotiate/placement-negotiation.js'
export { PeerClient } from './negotiate/peer-client.js'
export { NEGOTIATE_PROTOCOL, NAMES_PROTOCOL, MIGRATION_CONTROL_PROTOCOL, REPLICA_GROUP_PROTOCOL, CONTROL_PROTOCOL } from './negotiate/protocols.js'
export { AgentEvents, type AgentEventMap, type AgentEventName } from './util/agent-events.js'
export { ResourceLedger } from './ledger/resource-ledger.js'
export { decideReserve, auditLedger } from './ledger/ledger-math.js'
export { VmManager } from './vm/vm-manager.js'
export { vmSpecFromWire, vmSpecToWire, type VmSpec } from './vm/vm-spec-codec.js'
export { VmPreparation, VmPrepareError, type VmOrigin, type VmResource, type PreparingVm } from './vm/vm-preparation.js'
export { vmStateFromWire } from './vm/vm-state.js'
export { createLogger, silentLogger, type Logger } from './log/logger.js'
export { writeClusterKey } from './store/cluster-key-file.js'
export type { Resources } from './resources.js'
export * from './monitor/index.js'
export * from './replica/index.js'
export { nameAuthorities } from './negotiate/name-authority.js'
export { BALANCE_TIMINGS, Balancer, BalanceGovernor, balanceView, resolveKnobs, type BalanceKnobs, type BalancerStats, type RoundOutcome } from './balance/index.js'
export type { BalancePart } from './parts/balance-part.js'
