import { mkdir, rm, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { loadExeca } from '../lazy-execa.js'
import { SeedToolMissingError } from '../errors.js'
import type { AbortOptions, SeedSpec } from '../types.js'

export const SEED_ISO = 'seed.iso'
/** cloud-init's NoCloud datasource finds its seed by this volume label. */
export const SEED_VOLUME_ID = 'cidata'

export interface WriteSeedIsoOptions extends AbortOptions {
  xorriso: string
  /** The VM's dir: the ISO is `<dir>/seed.iso`. */
  dir: string
  seed: SeedSpec
}

/**
 * Writes the seed as an ISO 9660 image (Joliet + Rock Ridge, volume id `cidata`) with xorriso.
 * Byte-identical for the same files on any host at any time — a migration or failover destination
 * rebuilds it and must present the guest the same disk. Measured: two builds seconds apart, from
 * copies with other inodes, modes and mtimes, have the same sha256 only with every date pinned
 * (volume dates, the volume uuid, each file's dates from its mtime set to 0) and owners and
 * modes forced; SOURCE_DATE_EPOCH with `-as mkisofs` still leaks file mtimes, and genisoimage
 * 1.1.11 always writes the wall clock into the volume descriptor.
 */
export async function writeSeedIso (options: WriteSeedIsoOptions): Promise<string> {
  const staging = join(options.dir, 'seed.d')
  const iso = join(options.dir, SEED_ISO)
  await rm(staging, { recursive: true, force: true })
  await mkdir(staging, { recursive: true })
  try {
    for (const file of options.seed.files) {
      if (!/^[a-z0-9][a-z0-9._-]*$/.test(file.name)) throw new Error(`seed file name '${file.name}' is not a plain lowercase file name`)
      const path = join(staging, file.name)
      await writeFile(path, file.content)
      await utimes(path, 0, 0)
    }
    await utimes(staging, 0, 0)
    const epoch = '1970010100000000'
    const args = [
      '-no_rc', '-report_about', 'SORRY',
      '-volid', SEED_VOLUME_ID, '-joliet', 'on', '-rockridge', 'on',
      '-volume_date', 'c', epoch, '-volume_date', 'm', epoch, '-volume_date', 'x', 'default',
      '-volume_date', 'f', 'default', '-volume_date', 'uuid', epoch,
      '-volume_date', 'all_file_dates', 'set_to_mtime',
      '-outdev', `stdio:${iso}`, '-blank', 'as_needed', '-map', staging, '/',
      '-chown_r', '0', '/', '--', '-chgrp_r', '0', '/', '--',
      '-find', '/', '-type', 'f', '-exec', 'chmod', '0444', '--',
      '-find', '/', '-type', 'd', '-exec', 'chmod', '0555', '--',
      '-commit'
    ]
    await rm(iso, { force: true })
    const result = await (await loadExeca())(options.xorriso, args, { reject: false, cancelSignal: options.signal, stdin: 'ignore' })
    if (result.code === 'ENOENT') throw new SeedToolMissingError(`${options.xorriso} not found: install the Debian package xorriso (scripts/install-system-deps) to give VMs a cloud-init seed`)
    if (result.failed) throw new Error(`xorriso could not write ${iso}: ${String(result.stderr).trim() || result.shortMessage}`)
  } finally {
    await rm(staging, { recursive: true, force: true })
  }
  return iso
}
