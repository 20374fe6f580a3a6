/**
 * Key material as bytes in, bytes out: the agent owns the files (data dir, `--cluster-key
 * FILE`), mesh only creates and checks the bytes.
 *
 * - Cluster key: the pnet v1 "swarm key" text format (`/key/swarm/psk/1.0.0/`, `/base16/`,
 *   64 hex digits), the same file IPFS private networks use.
 * - Identity key: an Ed25519 private key in libp2p's protobuf encoding; the host id (peer id)
 *   is derived from it, so a restarted agent that loads the same bytes keeps its host id.
 */
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { generateKey } from '@libp2p/pnet'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { InvalidClusterKeyError, InvalidIdentityKeyError } from './errors.js'

const CLUSTER_KEY_HEADER = '/key/swarm/psk/1.0.0/'
const CLUSTER_KEY_CODEC = '/base16/'
/** Header line + codec line + 64 hex digits, newline-separated, as pnet's generateKey writes. */
const CLUSTER_KEY_BYTES = 95
const PSK_HEX = /^[0-9a-fA-F]{64}$/

/** A new random cluster key (pnet v1 format, 95 bytes of ASCII); write it to a 0600 file. */
export function generateClusterKey (): Uint8Array {
  const key = new Uint8Array(CLUSTER_KEY_BYTES)
  generateKey(key)
  return key
}

/**
 * Checks a cluster key read from a file and returns it normalised (no trailing whitespace,
 * LF line ends), ready for `createMeshNode({ clusterKey })`. Throws InvalidClusterKeyError.
 */
export function parseClusterKey (bytes: Uint8Array): Uint8Array {
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes).trim()
  const lines = text.split(/\r\n|\r|\n/).map((l) => l.trim())
  if (lines.length !== 3) throw new InvalidClusterKeyError(`cluster key has ${lines.length} lines, expected 3`)
  const [header, codec, hex] = lines as [string, string, string]
  if (header !== CLUSTER_KEY_HEADER) throw new InvalidClusterKeyError(`cluster key header is not ${CLUSTER_KEY_HEADER}`)
  if (codec !== CLUSTER_KEY_CODEC) throw new InvalidClusterKeyError(`cluster key encoding ${codec} is not supported (only ${CLUSTER_KEY_CODEC})`)
  if (!PSK_HEX.test(hex)) throw new InvalidClusterKeyError('cluster key must hold 64 hex digits (32 bytes)')
  return new TextEncoder().encode(`${header}\n${codec}\n${hex.toLowerCase()}`)
}

export interface HostIdentity {
  privateKey: PrivateKey
  /** The peer id (base58), which is the host id everywhere in meshvirt. */
  hostId: string
  /** The key in libp2p's protobuf encoding: what the agent persists. */
  bytes: Uint8Array
}

/** A new Ed25519 identity. */
export async function generateIdentity (): Promise<HostIdentity> {
  const privateKey = await generateKeyPair('Ed25519')
  return identityOf(privateKey)
}

/** Loads an identity persisted with `generateIdentity().bytes`. Throws InvalidIdentityKeyError. */
export function identityFromBytes (bytes: Uint8Array): HostIdentity {
  let privateKey: PrivateKey
  try {
    privateKey = privateKeyFromProtobuf(bytes)
  } catch (err) {
    throw new InvalidIdentityKeyError('identity key is not a libp2p protobuf private key', err)
  }
  return identityOf(privateKey)
}

function identityOf (privateKey: PrivateKey): HostIdentity {
  return { privateKey, hostId: peerIdFromPrivateKey(privateKey).toString(), bytes: privateKeyToProtobuf(privateKey) }
}
