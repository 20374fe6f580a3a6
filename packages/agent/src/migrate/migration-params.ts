import { checkMultifdChannels, resolveMigrationParams, type MigrateOutOptions } from '@meshvirt/hypervisor'
import { pb, type meshvirt } from '@meshvirt/proto'
import { ControlError } from '../control/errors.js'

/** The wire's MigrationParams as the driver's options, validated before anything moves (0 = default). */
export function migrateOutOptions (p: meshvirt.v1.IMigrationParams | null | undefined): Partial<MigrateOutOptions> {
  const options: Partial<MigrateOutOptions> = {
    ...((p?.downtimeLimitMs ?? 0) > 0 ? { downtimeLimitMs: p?.downtimeLimitMs as number } : {}),
    ...(Number(p?.bandwidthBytesPerSec ?? 0) > 0 ? { bandwidthBytesPerSec: Number(p?.bandwidthBytesPerSec) } : {}),
    ...((p?.timeoutMs ?? 0) > 0 ? { timeoutMs: p?.timeoutMs as number } : {}),
    ...(p?.onTimeout === pb.MigrationParams.OnTimeout.ON_TIMEOUT_CONTINUE ? { onTimeout: 'continue' as const } : {}),
    ...(p?.autoConverge === true ? { autoConverge: true } : p?.noAutoConverge === true ? { autoConverge: false } : {}),
    ...((p?.channels ?? 0) > 0 ? { multifdChannels: p?.channels as number } : {})
  }
  try {
    resolveMigrationParams(options)
    checkMultifdChannels(options.multifdChannels)
  } catch (err) {
    throw new ControlError('INVALID_ARGUMENT', (err as Error).message)
  }
  return options
}
