import { join } from 'node:path'
import { generateIdentity, identityFromBytes, type HostIdentity } from '@meshvirt/mesh'
import { readOptional, writeFileAtomic } from './data-dir.js'

export const IDENTITY_FILE = 'identity.key'

/**
 * The host's libp2p identity, kept in the data dir so a restarted agent keeps its host id.
 * Created on first start (0600, written atomically).
 */
export async function loadOrCreateIdentity (dataDir: string): Promise<{ identity: HostIdentity, created: boolean }> {
  const path = join(dataDir, IDENTITY_FILE)
  const bytes = await readOptional(path)
  if (bytes !== undefined) return { identity: identityFromBytes(bytes), created: false }
  const identity = await generateIdentity()
  await writeFileAtomic(path, identity.bytes)
  return { identity, created: true }
}
