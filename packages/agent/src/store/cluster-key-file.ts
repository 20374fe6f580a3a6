import { constants } from 'node:fs'
import { access } from 'node:fs/promises'
import { generateClusterKey, parseClusterKey } from '@meshvirt/mesh'
import { ConfigError } from '../config/errors.js'
import { readOptional, writeFileAtomic } from './data-dir.js'

/** Writes a new cluster key file (0600); refuses to replace one unless `force`. */
export async function writeClusterKey (path: string, opts: { force?: boolean } = {}): Promise<void> {
  const exists = await access(path, constants.F_OK).then(() => true, () => false)
  if (exists && opts.force !== true) {
    throw new ConfigError(`${path} already exists; agents using it would be locked out by a new key. Use --force to replace it, or --out for another file`)
  }
  await writeFileAtomic(path, generateClusterKey(), 0o600)
}

/**
 * Reads the cluster key for the agent. A missing key at the default place (DATA_DIR/cluster.key)
 * is created, so a first host starts with one command; a missing key named explicitly is an
 * error, because silently starting a second cluster is worse than not starting.
 */
export async function readClusterKey (path: string, opts: { createIfMissing: boolean }): Promise<{ key: Uint8Array, created: boolean }> {
  let bytes = await readOptional(path)
  let created = false
  if (bytes === undefined) {
    if (!opts.createIfMissing) throw new ConfigError(`cluster key ${path} not found: create one with \`meshvirt cluster init --out ${path}\`, or copy it from a host of the cluster`)
    await writeFileAtomic(path, generateClusterKey(), 0o600)
    bytes = await readOptional(path)
    created = true
  }
  try {
    return { key: parseClusterKey(bytes as Uint8Array), created }
  } catch (err) {
    throw new ConfigError(`cluster key ${path}: ${(err as Error).message}`)
  }
}
