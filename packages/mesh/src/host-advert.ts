/**
 * What a host tells the cluster about itself, as plain data (the wire form is
 * `meshvirt.v1.HostAdvert`; see advert-codec.ts). A hint, never a promise: the host's own
 * ledger decides at Reserve time.
 */

export type Accelerator = 'unspecified' | 'kvm' | 'tcg'
export type HostState = 'unspecified' | 'active' | 'draining' | 'drained' | 'leaving'
export type VmRole = 'unspecified' | 'owner' | 'replica'
export type VmState = 'unspecified' | 'pending' | 'starting' | 'running' | 'stopping' | 'stopped' |
'migrating' | 'crashed' | 'fenced' | 'deleting'

export interface Resources {
  vcpus: number
  memoryBytes: number
  diskBytes: number
}

export interface Overcommit {
  cpu: number
  memory: number
  disk: number
}

/** Free = (total − hostReserved) × overcommit − allocated − reservations. */
export interface HostCapacity {
  total: Resources
  hostReserved: Resources
  allocated: Resources
  reservations: Resources
  overcommit: Overcommit
}

export interface HostLoad {
  load1: number
  /** 0..1 over all physical cores. */
  cpuUtilization: number
  memoryUsedBytes: number
  diskUsedBytes: number
  vmsRunning: number
  /** The host's physical disks and interfaces, bytes/s over the last sample (absent: not measured). */
  diskReadBps?: number
  diskWriteBps?: number
  netRxBps?: number
  netTxBps?: number
}

/** A VM's NIC: every host forwards to it (MAC → the VM's host) and answers ARP for it. */
export interface NicSummary {
  network: string
  ip: string
  mac: string
}

export interface VmSummary {
  id: string
  name: string
  epoch: number
  role: VmRole
  state: VmState
  resources: Resources
  owner: string
  group: string
  nics: NicSummary[]
  /** Measured by the owner for the balancer (absent: not measured yet). */
  usage?: VmUsage
  /** `vm create --no-balance`: no balancer moves it. */
  noBalance?: boolean
  /** A replicated VM: its replicas' largest lag, as the owner last measured. */
  replicaLagMs?: number
}

/** What a running guest costs its host, measured: CPU cores busy, resident memory. */
export interface VmUsage {
  cpuCores: number
  memoryBytes: number
  /** The guest's disk and NIC rates, bytes/s (absent: its driver does not measure them). */
  diskReadBps?: number
  diskWriteBps?: number
  netRxBps?: number
  netTxBps?: number
}

export type BalanceMode = 'off' | 'recommend' | 'auto'

/** The cluster's balancing setting, gossiped in every advert: the larger (version, setBy) wins. */
export interface BalanceSetting {
  mode: BalanceMode
  /** The setter's wall clock (ms) when it was set; 0: the default, never set. */
  version: number
  setBy: string
}

/** A virtual network as every host gossips it (a tombstone once `deletedAtMs` is set). */
export interface NetworkRecord {
  name: string
  id: string
  vni: number
  subnet: string
  gateway: string
  mtu: number
  nat: boolean
  dhcp: boolean
  createdAtMs: number
  /** 0 while the network exists. */
  deletedAtMs: number
}

/**
 * A VM group as every host gossips it (a tombstone once `deletedAtMs` is set). The template is the
 * members' encoded `meshvirt.v1.VmSpec`: opaque here, read by the agent.
 */
export interface VmGroupRecord {
  name: string
  id: string
  count: number
  template: Uint8Array
  revision: number
  updatedAtMs: number
  updatedBy: string
  createdAtMs: number
  /** 0 while the group exists. */
  deletedAtMs: number
}

/** An image of the library as one host holds it (or is fetching it: `have` names the chunks it has). */
export interface ImageHolding {
  /** `sha256:<hex>` of the bytes. */
  digest: string
  sizeBytes: number
  format: string
  /** The NAME:TAG names this host knows the bytes by. */
  refs: string[]
  chunkCount: number
  /** Empty: every chunk is held; else one bit per chunk (low bit first). */
  have: Uint8Array
  /** When the newest of its names was given (the importer's clock). */
  namedAtMs: number
  /** This host's VMs whose disks read it. */
  usedBy: string[]
}

/** A library name removed (`image rm`), gossiped for a while by every host that heard of it. */
export interface ImageTombstone {
  ref: string
  digest: string
  deletedAtMs: number
}

/** The part of an advert the agent controls; mesh adds identity, versioning and timing. */
export interface HostAdvertContent {
  labels: Record<string, string>
  capacity: HostCapacity
  accelerator: Accelerator
  cpuModel: string
  cpuFlagsFingerprint: string
  cpuFlags: string[]
  qemuVersion: string
  machineTypes: string[]
  state: HostState
  load: HostLoad
  vms: VmSummary[]
  agentVersion: string
  hostname: string
  /** Where other hosts send this host's overlay traffic (an IPv4 address; empty: none). */
  underlay: string
  networks: NetworkRecord[]
  images: ImageHolding[]
  imageTombstones: ImageTombstone[]
  /** The balancing setting this host follows (absent: an agent that predates balancing). */
  balance?: BalanceSetting
  /** The VM groups this host knows of (tombstones included). */
  groups: VmGroupRecord[]
  /** The ids of the groups this host reconciles now (it holds their ownership lease). */
  groupsOwned: string[]
  /** The revocations of user tokens this host knows of: tokens of `user` issued at or before `beforeMs` are refused. */
  revocations: UserRevocation[]
}

export interface UserRevocation {
  user: string
  beforeMs: number
}

export interface HostAdvert extends HostAdvertContent {
  /** libp2p peer id (base58); equals the gossip signer. */
  hostId: string
  /** Grows each time the agent starts. */
  incarnation: number
  /** Grows with every advert of this incarnation. */
  seq: number
  addrs: string[]
  /** Sender's wall clock (display only; liveness uses the receiver's clock). */
  sentAtMs: number
  /** The sender's current heartbeat period; receivers time suspicion from it. */
  heartbeatIntervalMs: number
}

export const ZERO_RESOURCES: Readonly<Resources> = Object.freeze({ vcpus: 0, memoryBytes: 0, diskBytes: 0 })

/** Nova's defaults: CPU 4.0, memory 1.0, disk 1.0. */
export const DEFAULT_OVERCOMMIT: Readonly<Overcommit> = Object.freeze({ cpu: 4, memory: 1, disk: 1 })

/** A content with every field present and empty, to spread the agent's facts over. */
export function emptyAdvertContent (): HostAdvertContent {
  return {
    labels: {},
    capacity: {
      total: { ...ZERO_RESOURCES },
      hostReserved: { ...ZERO_RESOURCES },
      allocated: { ...ZERO_RESOURCES },
      reservations: { ...ZERO_RESOURCES },
      overcommit: { ...DEFAULT_OVERCOMMIT }
    },
    accelerator: 'unspecified',
    cpuModel: '',
    cpuFlagsFingerprint: '',
    cpuFlags: [],
    qemuVersion: '',
    machineTypes: [],
    state: 'active',
    load: { load1: 0, cpuUtilization: 0, memoryUsedBytes: 0, diskUsedBytes: 0, vmsRunning: 0 },
    vms: [],
    agentVersion: '',
    hostname: '',
    underlay: '',
    networks: [],
    images: [],
    imageTombstones: [],
    groups: [],
    groupsOwned: [],
    revocations: []
  }
}

/** True when `a` is newer than `b` by (incarnation, seq). */
export function isNewer (a: { incarnation: number, seq: number }, b: { incarnation: number, seq: number }): boolean {
  return a.incarnation > b.incarnation || (a.incarnation === b.incarnation && a.seq > b.seq)
}
