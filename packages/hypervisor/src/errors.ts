/**
 * One error class per failure. Match on `code` (or `name`), not `instanceof`: errors cross
 * process and package boundaries. Every message says what to do about it.
 */
export class HypervisorError extends Error {
  readonly code: string
  constructor (code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = 'HypervisorError'
  }
}

/** qemu-system-x86_64 or qemu-img is not installed (or not where configured). */
export class QemuMissingError extends HypervisorError {
  static readonly code = 'ERR_QEMU_MISSING'
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_QEMU_MISSING', message, options)
    this.name = 'QemuMissingError'
  }
}

/** KVM was asked for but cannot run here. */
export class KvmUnusableError extends HypervisorError {
  static readonly code = 'ERR_KVM_UNUSABLE'
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_KVM_UNUSABLE', message, options)
    this.name = 'KvmUnusableError'
  }
}

/** A kernel, initrd or base image does not exist. */
export class ImageMissingError extends HypervisorError {
  static readonly code = 'ERR_IMAGE_MISSING'
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_IMAGE_MISSING', message, options)
    this.name = 'ImageMissingError'
  }
}

/** The data dir's file system is full. */
export class DiskFullError extends HypervisorError {
  static readonly code = 'ERR_DISK_FULL'
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_DISK_FULL', message, options)
    this.name = 'DiskFullError'
  }
}

/** A name or path would escape the data dir or the image dirs. */
export class PathOutsideDataDirError extends HypervisorError {
  static readonly code = 'ERR_PATH_OUTSIDE_DATA_DIR'
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_PATH_OUTSIDE_DATA_DIR', message, options)
    this.name = 'PathOutsideDataDirError'
  }
}

/** The VM asks for more than the host has. */
export class ResourcesTooLargeError extends HypervisorError {
  static readonly code = 'ERR_RESOURCES_TOO_LARGE'
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_RESOURCES_TOO_LARGE', message, options)
    this.name = 'ResourcesTooLargeError'
  }
}

/** The VM spec is malformed. */
export class InvalidSpecError extends HypervisorError {
  static readonly code = 'ERR_INVALID_SPEC'
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_INVALID_SPEC', message, options)
    this.name = 'InvalidSpecError'
  }
}

/** No such VM on this host. */
export class VmNotFoundError extends HypervisorError {
  static readonly code = 'ERR_VM_NOT_FOUND'
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_VM_NOT_FOUND', message, options)
    this.name = 'VmNotFoundError'
  }
}

/** A VM with this id already exists. */
export class VmExistsError extends HypervisorError {
  static readonly code = 'ERR_VM_EXISTS'
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_VM_EXISTS', message, options)
    this.name = 'VmExistsError'
  }
}

/** The action is not legal in the VM's current state (e.g. start a running VM). */
export class WrongStateError extends HypervisorError {
  static readonly code = 'ERR_WRONG_STATE'
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_WRONG_STATE', message, options)
    this.name = 'WrongStateError'
  }
}

/** QMP refused a command, or the connection failed. */
export class QmpError extends HypervisorError {
  static readonly code = 'ERR_QMP'
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_QMP', message, options)
    this.name = 'QmpError'
  }
}

/** QMP did not answer in time. */
export class QmpTimeoutError extends HypervisorError {
  static readonly code = 'ERR_QMP_TIMEOUT'
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_QMP_TIMEOUT', message, options)
    this.name = 'QmpTimeoutError'
  }
}

/** QEMU failed to start, or would not die. */
export class QemuLaunchError extends HypervisorError {
  static readonly code = 'ERR_QEMU_LAUNCH'
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_QEMU_LAUNCH', message, options)
    this.name = 'QemuLaunchError'
  }
}

/** The caller aborted the operation. */
export class AbortedError extends HypervisorError {
  static readonly code = 'ERR_ABORTED'
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_ABORTED', message, options)
    this.name = 'AbortedError'
  }
}

/** A bounded wait ended without its condition (e.g. a serial marker that never came). */
export class WaitTimeoutError extends HypervisorError {
  static readonly code = 'ERR_WAIT_TIMEOUT'
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_WAIT_TIMEOUT', message, options)
    this.name = 'WaitTimeoutError'
  }
}

/** A VM's record (vm.json) cannot be read back. */
export class CorruptRecordError extends HypervisorError {
  static readonly code = 'ERR_CORRUPT_RECORD'
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_CORRUPT_RECORD', message, options)
    this.name = 'CorruptRecordError'
  }
}

/** A migration parameter is out of range (bandwidth, downtime limit, timeout, …). */
export class InvalidMigrationParamsError extends HypervisorError {
  static readonly code = 'ERR_INVALID_MIGRATION_PARAMS'
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_INVALID_MIGRATION_PARAMS', message, options)
    this.name = 'InvalidMigrationParamsError'
  }
}

/** A live migration failed or was cancelled; its message says where the guest is left. */
export class MigrationFailedError extends HypervisorError {
  static readonly code = 'ERR_MIGRATION_FAILED'
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_MIGRATION_FAILED', message, options)
    this.name = 'MigrationFailedError'
  }
}

/** The migration did not reach its switchover within its timeout and was cancelled (onTimeout 'cancel'). */
export class MigrationTimeoutError extends HypervisorError {
  static readonly code = 'ERR_MIGRATION_TIMEOUT'
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_MIGRATION_TIMEOUT', message, options)
    this.name = 'MigrationTimeoutError'
  }
}

/** A NIC's tap does not exist on this host (or is not a tap): the agent creates it before start/prepareIncoming. */
export class TapMissingError extends HypervisorError {
  static readonly code = 'ERR_TAP_MISSING'
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_TAP_MISSING', message, options)
    this.name = 'TapMissingError'
  }
}

/** xorriso, which writes a VM's cloud-init seed, is not installed (or not where configured). */
export class SeedToolMissingError extends HypervisorError {
  static readonly code = 'ERR_SEED_TOOL_MISSING'
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_SEED_TOOL_MISSING', message, options)
    this.name = 'SeedToolMissingError'
  }
}
