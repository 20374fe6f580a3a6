import { createHash, randomUUID } from 'node:crypto'
import { MAX_VNI } from '@meshvirt/network'
import type { meshvirt } from '@meshvirt/proto'
import { ControlError } from '../control/errors.js'
import type { Logger } from '../log/logger.js'
import type { ClusterClaims } from './cluster-claims.js'
import type { NetworkBook } from './network-book.js'
import { isLive, type NetworkRecord } from './network-record.js'
import { parseCreateNetwork, sameDefinition } from './network-request.js'

/** VXLAN ids tried before a creation gives up (each taken one costs a claim round trip). */
const VNI_TRIES = 32

export const networkKey = (name: string): string => `net:${name}`
export const vniKey = (vni: number): string => `vni:${vni}`

/**
 * `net create` and `net delete`, accepted by any agent, no coordinator: the name is claimed at its
 * rendezvous authorities (as a VM name is), then a VXLAN id no other network holds (claimed the
 * same way), and the record enters this host's book, whose advert gossips it to every host.
 */
export class NetworkAdmin {
  constructor (private readonly deps: {
    book: NetworkBook
    claims: ClusterClaims
    /** Names of the VMs with a NIC on the network, cluster-wide as this host sees it. */
    usersOf: (network: string) => string[]
    underlayMtu: number
    log: Logger
    clock?: () => number
  }) {}

  async create (req: meshvirt.v1.ICreateNetwork, idempotencyKey: string): Promise<{ network: NetworkRecord, existed: boolean }> {
    const { book, claims } = this.deps
    const draft = parseCreateNetwork(req, book.live(), this.deps.underlayMtu)
    const known = book.get(draft.name)
    if (known !== undefined) {
      if (sameDefinition(draft, known)) return { network: known, existed: true }
      throw new ControlError('ALREADY_EXISTS', `network ${draft.name} exists with another definition (${describe(known)}): choose another name`)
    }
    const id = idempotencyKey !== '' ? `n${hash(idempotencyKey).slice(0, 15)}` : `n${randomUUID().replaceAll('-', '').slice(0, 15)}`
    const name = await claims.claim(networkKey(draft.name), id, idempotencyKey || id)
    if (!name.granted) throw new ControlError('ALREADY_EXISTS', `network ${draft.name} is being created by another request: see meshvirt net show ${draft.name}`)
    let vni: number | undefined
    try {
      vni = await this.claimVni(id)
      const network: NetworkRecord = { ...draft, id, vni, createdAtMs: (this.deps.clock ?? Date.now)(), deletedAtMs: 0 }
      book.merge([network])
      await Promise.all([claims.bind(networkKey(draft.name), id), claims.bind(vniKey(vni), id)])
      this.deps.log.info('network created', { network: draft.name, id, vni, subnet: draft.subnet })
      return { network, existed: false }
    } catch (err) {
      await claims.release(networkKey(draft.name), id)
      if (vni !== undefined) await claims.release(vniKey(vni), id)
      throw err
    }
  }

  /** Refused while a VM has a NIC on it; otherwise a tombstone every host hears of, and the claims freed. */
  async delete (name: string): Promise<NetworkRecord> {
    const n = this.deps.book.get(name)
    if (n === undefined) throw new ControlError('NOT_FOUND', `no network named ${name} (meshvirt net ls lists them)`)
    const users = this.deps.usersOf(name)
    if (users.length > 0) throw new ControlError('FAILED_PRECONDITION', `network ${name} is in use by ${users.length} VM(s): ${users.slice(0, 8).join(', ')}${users.length > 8 ? ', …' : ''}; delete them first`)
    const dead = this.deps.book.tombstone(name) as NetworkRecord
    await Promise.all([this.deps.claims.release(networkKey(name), n.id), this.deps.claims.release(vniKey(n.vni), n.id)])
    this.deps.log.info('network deleted', { network: name, id: n.id })
    return dead
  }

  /** A VXLAN id no network this host knows has, claimed cluster-wide (a race with another creation moves on to the next). */
  private async claimVni (id: string): Promise<number> {
    const used = new Set(this.deps.book.all().filter(isLive).map((n) => n.vni))
    let candidate = (parseInt(hash(id).slice(0, 6), 16) % MAX_VNI) + 1
    for (let tries = 0; tries < VNI_TRIES; tries++, candidate = (candidate % MAX_VNI) + 1) {
      if (used.has(candidate)) continue
      const got = await this.deps.claims.claim(vniKey(candidate), id, `${id}/vni`)
      if (got.granted) return candidate
    }
    throw new ControlError('UNAVAILABLE', `could not claim a VXLAN id after ${VNI_TRIES} tries; retry`)
  }
}

function hash (text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

export function describe (n: NetworkRecord): string {
  return `subnet ${n.subnet}, gateway ${n.gateway}, mtu ${n.mtu}${n.nat ? ', nat' : ''}${n.dhcp ? '' : ', no dhcp'}`
}
