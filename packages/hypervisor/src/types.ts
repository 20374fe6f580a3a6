/**
 * The driver boundary between the agent and its VMs, in plain TypeScript types (no wire types).
 * In the spirit of Nomad's driver plugins: one interface for the lifecycle; migration and backups
 * arrive as their own small interfaces next to it.
 */
import type { VmResize } from './resize.js'

export type Accelerator = 'kvm' | 'tcg'

export type BootSource =
  /** Direct kernel boot (the test guest). Paths must lie inside the driver's image dirs. */
  | { kind: 'kernel', kernel: string, initrd?: string, cmdline?: string }
  /** Firmware boot from the first disk. */
  | { kind: 'disk' }

export interface DiskSpec {
  /** Device name inside the VM dir and the QEMU device id, e.g. `vda`. Stable across hosts (migration). */
  name: string
  sizeMiB: number
  /** A qcow2 or raw base image used as the read-only backing file; omitted for a blank disk. */
  base?: string
  /**
   * The base is content-addressed (a library image) and a migration's destination has the same bytes
   * under its own disk: only the disk's own layer is mirrored (`sync=top`), not the base's blocks.
   */
  sharedBase?: boolean
  /**
   * Create only: an image (raw or qcow2) copied into the new disk, which is then standalone; e.g. a
   * replica's image when the VM fails over to its holder. Not kept in the VM's record.
   */
  importFrom?: string
}

/**
 * A virtio-net NIC on a tap the agent created beforehand (attached to its network's bridge). Both
 * come from the VM's identity (the network package's nicMac/tapName), so they are the same on every
 * host; the tap is host-side only and not part of what a migration carries.
 */
export interface NicSpec {
  /** Lowercase unicast `xx:xx:xx:xx:xx:xx`: the guest's hardware address. */
  mac: string
  /** The host's tap device (1–15 of `[A-Za-z0-9_.-]`); it must exist before start or prepareIncoming. */
  tap: string
}

export interface VmSpec {
  /** `[a-z0-9][a-z0-9._-]{0,62}`: also the VM's directory name under the data dir. */
  id: string
  vcpus: number
  /** All of the guest's RAM, what was added while it ran (`memoryDimmsMiB`) included. */
  memoryMiB: number
  /**
   * RAM added to the running guest, one DIMM each, in order (part of `memoryMiB`; the rest is boot
   * RAM). A migration's destination builds the same DIMMs; the next start folds them into boot RAM.
   */
  memoryDimmsMiB?: number[]
  /**
   * Room to grow while it runs (memory hot-add), opt-in as vSphere's: QEMU gets `slots`/`maxmem`.
   * It costs no host memory, but the room lies above 4 GiB, so a Linux guest sets aside a 64 MiB
   * bounce buffer (swiotlb) for DMA: measured here, a 320 MiB test guest has 207 MiB instead of 274.
   */
  maxMemoryMiB?: number
  /**
   * Room for vCPUs while it runs (vCPU hotplug), opt-in: QEMU gets one socket per possible vCPU.
   * Without it `-smp` is as it always was.
   */
  maxVcpus?: number
  /** The vCPUs it booted with, when some were added while it ran (part of `vcpus`; the next start folds them). */
  bootVcpus?: number
  boot: BootSource
  disks?: DiskSpec[]
  /** Defaults to `qemu64`. `host` is KVM-only and cannot migrate: choose it only when the VM never moves. */
  cpuModel?: string
  /** Up to MAX_NICS; NIC i is the guest's eth<i> (PCI slot 2, function i). */
  nics?: NicSpec[]
  /**
   * A cloud-init NoCloud seed: written as `seed.iso` (volume `cidata`) in the VM's dir and attached
   * as a read-only CD-ROM (ide1-cd0, id `seed`) on start and on an incoming migration alike. The
   * same files give the same ISO bytes on every host (qemu/seed-iso.ts).
   */
  seed?: SeedSpec
}

/** The files of a seed, e.g. `meta-data`, `user-data`, `network-config`; names are plain lowercase file names. */
export interface SeedSpec {
  files: Array<{ name: string, content: string }>
}

/**
 * created → running → stopped (asked) | crashed (exited on its own, or killed from outside).
 * stopped/crashed → running again through start().
 */
export type VmState = 'created' | 'running' | 'stopped' | 'crashed'

export type ExitReason =
  /** The guest powered itself off, or honoured the ACPI power button. */
  | 'guest-shutdown'
  | 'sigterm'
  | 'sigkill'
  /** kill() was called. */
  | 'killed'
  /** QEMU died without being asked (signal from elsewhere, crash, host OOM killer). */
  | 'crashed'
  /** QEMU exited while no driver was attached; the cause is unknown. */
  | 'exited-while-detached'
  /** The guest moved to another host (live migration) and this QEMU quit. */
  | 'migrated'

export interface VmPaths {
  dir: string
  pidFile: string
  qmpSocket: string
  serialLog: string
  /**
   * The serial port's input and output while QEMU runs (a unix socket QEMU listens on, one client at
   * a time: `meshvirt vm console`); everything the guest prints also goes to `serialLog`.
   */
  serialSocket: string
  /** QEMU's own messages (`-D`): a daemonized QEMU has no stderr, so its errors land here; the previous run's in `qemu.log.1`. */
  qemuLog: string
  disks: Record<string, string>
}

export interface VmInfo {
  id: string
  state: VmState
  spec: VmSpec
  accel: Accelerator
  /** The QEMU process while running. */
  pid?: number
  startedAt?: string
  /** Why the last run ended. */
  exit?: { reason: ExitReason, at: string }
  paths: VmPaths
  /** `incoming`: a paused QEMU waiting for a migration stream (see LiveMigration); `outgoing`: migrating away. */
  migration?: 'incoming' | 'outgoing'
}

export interface HostFingerprint {
  driver: string
  accel: Accelerator
  qemuVersion: string
  machineTypes: string[]
  cpus: number
  memoryMiB: number
  cpuModel: string
  cpuFlags: string[]
}

/** What a running VM costs its host right now. */
export interface VmStats {
  id: string
  /** Resident memory of the VM's process (QEMU's RSS; the configured memory for the simulation). */
  rssBytes: number
  /** CPU time the VM's process has used since it started. */
  cpuSeconds: number
  uptimeSeconds: number
  /** I/O counters since the guest started (absent: the driver does not measure them). */
  diskReadBytes?: number
  diskWriteBytes?: number
  netRxBytes?: number
  netTxBytes?: number
}

export type HypervisorEvent =
  | { type: 'started', id: string, pid?: number, at: string }
  | { type: 'recovered', id: string, pid?: number, at: string }
  | { type: 'stopped', id: string, reason: ExitReason, at: string }
  | { type: 'crashed', id: string, reason: ExitReason, at: string }

export interface AbortOptions {
  signal?: AbortSignal
}

export interface StartOptions extends AbortOptions {
  /**
   * Launch with the vCPUs stopped (QEMU's `-S`): the guest never runs. A cold migration moves a
   * stopped VM's disk through such a QEMU (its mirror and device state), then quits it.
   */
  paused?: boolean
}

export interface StopOptions extends AbortOptions {
  /** How long the guest gets to honour ACPI power-down before SIGTERM. */
  acpiTimeoutMs?: number
  /** How long QEMU gets on SIGTERM before SIGKILL. */
  termTimeoutMs?: number
}

/**
 * What a driver offers beyond the `Hypervisor` interface, declared by the driver itself: the agent
 * starts the parts these enable (migration, replication) and never probes for methods.
 */
export interface HypervisorCapabilities {
  /** The driver implements `LiveMigration`. */
  liveMigration: boolean
  /** The driver implements `ReplicationCapable` (its `replication`). */
  diskReplication: boolean
}

export interface Hypervisor {
  readonly driver: string
  /** What it offers beyond this interface (the compliance suite checks it offers what it declares). */
  readonly capabilities: HypervisorCapabilities
  /** What this host offers: accelerator, QEMU version and machine types, CPU and memory. */
  fingerprint: (options?: AbortOptions) => Promise<HostFingerprint>
  /**
   * Would `create` accept this spec here? The same checks `create` makes before touching the disk
   * (sizes against this host, boot files and images inside the image dirs), without side effects:
   * the agent asks at Reserve, so a VM this host cannot start never holds its capacity. Rejects
   * with the error `create` would throw.
   */
  checkSpec: (spec: VmSpec, options?: AbortOptions) => Promise<void>
  /** Memory each guest's process holds beyond the guest's RAM, MiB (0 or absent: none to account). */
  readonly guestMemoryOverheadMiB?: number
  /** Validate the spec, lay down the VM dir and its disks. The VM is `created`, not running. */
  create: (spec: VmSpec, options?: AbortOptions) => Promise<VmInfo>
  /** Launch the VM; resolves once it runs and its monitor answers (not when the guest has booted). */
  start: (id: string, options?: StartOptions) => Promise<VmInfo>
  /** Graceful: ACPI power-down, then SIGTERM, then SIGKILL, each after its timeout. */
  stop: (id: string, options?: StopOptions) => Promise<VmInfo>
  /** Immediate SIGKILL. */
  kill: (id: string, options?: AbortOptions) => Promise<VmInfo>
  inspect: (id: string, options?: AbortOptions) => Promise<VmInfo>
  /** Resource use of a running VM (for metrics and adverts). */
  stats: (id: string, options?: AbortOptions) => Promise<VmStats>
  list: (options?: AbortOptions) => Promise<VmInfo[]>
  /** Re-attach to a VM left by an earlier driver instance (agent restart); never restarts a guest. */
  recover: (id: string, options?: AbortOptions) => Promise<VmInfo>
  /**
   * Change the VM's size (planResize: disks only grow). A running VM's disks grow online (QMP
   * `block_resize`: the guest sees the new size); its vCPUs and memory change only while it is
   * not running (WrongStateError otherwise). A migrating VM is not resized.
   */
  resize: (id: string, change: VmResize, options?: AbortOptions) => Promise<VmInfo>
  /** Kill if running, then delete the VM's files. */
  destroy: (id: string, options?: AbortOptions) => Promise<void>
  /** Subscribe to lifecycle events; returns the unsubscribe function. */
  onEvent: (listener: (event: HypervisorEvent) => void) => () => void
  /** Lifecycle events as an async iterable, until `signal` aborts. */
  events: (options?: AbortOptions) => AsyncIterable<HypervisorEvent>
  /** Detach from every VM (close monitors) and leave the guests running. */
  close: () => Promise<void>
}
