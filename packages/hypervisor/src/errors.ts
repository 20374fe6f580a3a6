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

function define (code: string, name: string): new (message: string, options?: { cause?: unknown }) => HypervisorError {
  const cls = class extends HypervisorError {
    constructor (message: string, options?: { cause?: unknown }) {
      super(code, message, options)
      this.name = name
    }
  }
  Object.defineProperty(cls, 'name', { value: name })
  return cls
}

export const QemuMissingError = define('ERR_QEMU_MISSING', 'QemuMissingError')
export const KvmUnusableError = define('ERR_KVM_UNUSABLE', 'KvmUnusableError')
export const ImageMissingError = define('ERR_IMAGE_MISSING', 'ImageMissingError')
export const DiskFullError = define('ERR_DISK_FULL', 'DiskFullError')
export const PathOutsideDataDirError = define('ERR_PATH_OUTSIDE_DATA_DIR', 'PathOutsideDataDirError')
export const ResourcesTooLargeError = define('ERR_RESOURCES_TOO_LARGE', 'ResourcesTooLargeError')
export const InvalidSpecError = define('ERR_INVALID_SPEC', 'InvalidSpecError')
export const VmNotFoundError = define('ERR_VM_NOT_FOUND', 'VmNotFoundError')
export const VmExistsError = define('ERR_VM_EXISTS', 'VmExistsError')
/** The action is not legal in the VM's current state (e.g. start a running VM). */
export const WrongStateError = define('ERR_WRONG_STATE', 'WrongStateError')
export const QmpError = define('ERR_QMP', 'QmpError')
export const QmpTimeoutError = define('ERR_QMP_TIMEOUT', 'QmpTimeoutError')
export const QemuLaunchError = define('ERR_QEMU_LAUNCH', 'QemuLaunchError')
export const AbortedError = define('ERR_ABORTED', 'AbortedError')
