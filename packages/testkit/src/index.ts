/**
 * @packageDocumentation
 *
 * The kit the tests and benchmarks share (never shipped): waiting with a bound, the test guest
 * and its serial log, the Debian cloud image (`ensureCloudImage`), `meshvirt` agent processes
 * and the CLI, and a cluster of real agents in one process with the simulated hypervisor.
 */
export { pollUntil } from './poll.js'
export { REPO, ensureGuest, ensureCloudImage, cloudImageWanted, waitForSerial, lastCounter, killQemusUnder, isRunning, type TestGuest, type CloudImage } from './guest.js'
export { guestFiles, inGuest, withoutConsoleNoise } from './guest-shell.js'
export { keepAgentLogs } from './agent-logs.js'
export { MESHVIRT_BIN, meshvirt, meshvirtOn, startAgentProcess, agentProcess, startAgentCluster, type AgentProcess } from './agent-process.js'
export { startSimCluster, simVmSpec, type SimCluster, type SimClusterOptions, type SimHostSize } from './sim-cluster.js'
