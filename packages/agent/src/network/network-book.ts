import type { NetworkStore } from '../store/network-store.js'
import { ClusterBook } from '../util/cluster-book.js'
import { NETWORK_TOMBSTONE_TTL_MS, preferred, sameRecord, type NetworkRecord } from './network-record.js'

/**
 * The cluster's networks as this host knows them: kept in its store, merged from every advert it
 * hears (network-record.ts's `preferred` decides between two records of a name), and gossiped in
 * its own advert.
 */
export class NetworkBook extends ClusterBook<NetworkRecord> {
  constructor (store: NetworkStore, onChange: (changed: NetworkRecord[]) => void, clock: () => number = Date.now) {
    super(store, { preferred, same: sameRecord, tombstoneTtlMs: NETWORK_TOMBSTONE_TTL_MS }, onChange, clock)
  }
}
