/**
 * @meshvirt/hypervisor — the boundary between the agent and its VMs.
 *
 * @example
 * ```ts
 * import { QemuHypervisor, probeAccelerator } from '@meshvirt/hypervisor'
 *
 * const probe = await probeAccelerator({ kernel, initrd, cacheFile: `${dataDir}/accel-probe.json` })
 * const hv = new QemuHypervisor({ dataDir, accel: probe.accel, imageDirs: [guestDir] })
 * await hv.create({ id: 'web-1', vcpus: 1, memoryMiB: 128, boot: { kind: 'kernel', kernel, initrd, cmdline: 'console=ttyS0' }, disks: [{ name: 'vda', sizeMiB: 64 }] })
 * await hv.start('web-1')
 * // after an agent restart, in a new process:
 * await new QemuHypervisor({ dataDir, accel: probe.accel }).recover('web-1')
 * ```
 *
 * Live migration (`LiveMigration`, implemented by both drivers):
 * ```ts
 * const inc = await dst.prepareIncoming(spec, { disks: 'mirror' })           // destination
 * const res = await src.migrateOut(spec.id, { migrationSocket: inc.migrationSocket, nbdSocket: inc.nbdSocket })
 * await dst.completeIncoming(spec.id)                                       // guest runs there
 * await src.completeOutgoing(spec.id)                                       // old QEMU quits
 * ```
 *
 * `SimHypervisor` is an in-memory stand-in for control-plane scale benchmarks only.
 */
export type {
  AbortOptions, Accelerator, BootSource, DiskSpec, ExitReason, HostFingerprint, Hypervisor,
  HypervisorEvent, NicSpec, SeedSpec, StartOptions, StopOptions, VmInfo, VmPaths, VmSpec, VmState, VmStats
} from './types.js'
export * from './constants.js'
export * from './errors.js'
export { LEGAL_STATES, assertLegal, isLegal, type VmAction } from './lifecycle.js'
export { validateSpec, type HostLimits } from './spec-validation.js'
export { planResize, type ResizePlan, type VmResize } from './resize.js'
export { QemuHypervisor, isHypervisorError, type QemuHypervisorInit } from './qemu/qemu-hypervisor.js'
export { buildQemuArgv, escapeOption, type QemuLaunch } from './qemu/argv.js'
export { QmpClient, type QmpCommandOptions, type QmpEvent } from './qemu/qmp-client.js'
export { probeAccelerator, PROBE_MARKER, PROBE_TIMEOUT_MS, type AcceleratorProbeOptions, type AcceleratorProbeResult } from './qemu/accel-probe.js'
export { createDisk, type CreateDiskOptions } from './qemu/disks.js'
export { inspectImage, type ImageInfo } from './qemu/image-info.js'
export { writeRawImage } from './qemu/raw-image.js'
export { writeSeedIso, SEED_ISO, SEED_VOLUME_ID, type WriteSeedIsoOptions } from './qemu/seed-iso.js'
export { hostFingerprint, qemuMachineTypes, qemuVersion } from './qemu/fingerprint.js'
export { vmPaths } from './qemu/vm-paths.js'
export { checkTaps } from './qemu/taps.js'
export { announceSelf } from './migration/announce.js'
export { ImageSources, IMAGE_STORE_DIR, REPLICA_STORE_DIR, type ImageSourcesInit, type ImageUse } from './image-sources.js'
export { followSerialLog, waitForSerialLine, type FollowSerialOptions, type WaitForSerialOptions } from './qemu/serial-log.js'
export { SimHypervisor, type SimHypervisorInit } from './sim/sim-hypervisor.js'
export type {
  DiskMode, IncomingCompletion, IncomingMigration, IncomingTcp, LiveMigration, MigrateOutOptions, MigrationPhase,
  MigrationProgress, MigrationResult, PrepareIncomingOptions, TimeoutAction
} from './migration/types.js'
export {
  FORCED_DOWNTIME_LIMIT_MS, MAX_DOWNTIME_LIMIT_MS, MIGRATION_BANDWIDTH_BYTES_PER_SEC, MIGRATION_DOWNTIME_LIMIT_MS,
  MIGRATION_PROGRESS_INTERVAL_MS, MIGRATION_TIMEOUT_MS, MAX_MULTIFD_CHANNELS, MIGRATION_AUTO_CONVERGE, MIGRATION_MULTIFD_CHANNELS, checkMultifdChannels, resolveMigrationParams, type MigrationParams
} from './migration/migration-params.js'
export { MIGRATION_PSK_USERNAME, MIGRATION_TLS_ID, MIGRATION_TLS_PRIORITY_AES, checkPsk, hostHasAes, pskFileContents, tlsCredsObject, type MigrationTls } from './migration/migration-tls.js'
export {
  migrationUri, nbdBlockdevServer, nbdServerStartAddress, parseMigrationAddress, tcpAddress, type MigrationAddress
} from './migration/migration-address.js'
export { migrationStatus, mirrorProgress, type MigrationStatus, type QemuBlockJob, type QemuMigrationInfo } from './migration/migration-status.js'
export type {
  DiskReplication, PointData, PointDisk, PointExtent, PointKind, ReplicationCapable, ReplicationPoint, ReplicationStatus, TakePointOptions
} from './backup/types.js'
export { PointFailedError, PointNotFoundError, ReplicationNeedsFullError } from './backup/errors.js'
export { QemuReplication, POINT_TIMEOUT_MS, REPLICA_BITMAP, type QemuReplicationInit } from './backup/qemu-replication.js'
export { SimReplication, SIM_BLOCK_BYTES, type SimReplicationInit } from './backup/sim-replication.js'
export { pointExtents, dataBytes, type QemuMapEntry } from './backup/point-map.js'
export { offersLiveMigration, offersReplication } from './capabilities.js'
