// The integration-test cluster is the agent's own sim cluster (shared with the benchmarks).
export { startSimCluster as startInProcessCluster, simVmSpec as simSpec, type SimCluster as InProcessCluster } from '@meshvirt/testkit'
