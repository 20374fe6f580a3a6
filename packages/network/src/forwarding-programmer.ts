import { FLOOD_MAC } from './constants.js'
import { diffEntries } from './diff.js'
import { desiredFdb, desiredNeigh, fdbKey, neighKey, parseFdb, parseNeigh, sameFdb, sameNeigh, type FdbEntry, type NeighEntry } from './forwarding.js'
import { mustRun } from './runner.js'
import type { CommandRunner } from './runner.js'
import type { NetworkPeers } from './types.js'

/** Counts of what one programming pass changed (both zero on a second pass with the same peers). */
export interface ForwardingChanges {
  fdb: { added: number, removed: number }
  neigh: { added: number, removed: number }
}

/** A VXLAN device's entries as this driver last left them (what a pass diffs against instead of reading the kernel). */
export interface ForwardingTables {
  fdb: FdbEntry[]
  neigh: NeighEntry[]
}

export interface ProgramOptions {
  /** This host's underlay address: entries pointing at it are left out. */
  self?: string
  /** False: nothing is removed (a view that may be incomplete). Default true. */
  prune?: boolean
  /**
   * The tables as the last pass left them. Given, the pass diffs against them and reads nothing:
   * a moved MAC is re-pointed with one command instead of a read-back and a command. Learning may
   * have moved an entry since (to where the MAC's frames now come from, which the gossip then
   * confirms: the next change re-points it anyway) or added one; a re-made device or a failed
   * command makes them stale — the caller then passes none, and the kernel is read.
   */
  known?: ForwardingTables
}

/**
 * Brings a VXLAN device's forwarding and neighbour entries to what `peers` call for: diffs against
 * the known tables or, without them, what the kernel has (`-j`), and applies the difference in one
 * `-batch` per tool. Additions go first, so a moving MAC is replaced in place and a host joining
 * floods before a leaving one stops. Returns the changes and the tables as they now are.
 */
export async function programForwarding (run: CommandRunner, vxlan: string, peers: NetworkPeers, opts: ProgramOptions = {}): Promise<{ changes: ForwardingChanges, tables: ForwardingTables }> {
  const { self, known } = opts
  const prune = opts.prune !== false
  // An entry pointing at this host itself would loop its own floods back: gossip may well list it.
  if (self !== undefined) peers = { floodTo: peers.floodTo.filter((u) => u !== self), nics: peers.nics.filter((n) => n.underlay !== self) }
  const [actualFdb, actualNeigh] = known !== undefined
    ? [known.fdb, known.neigh]
    : await Promise.all([
      mustRun(run, 'bridge', ['-j', 'fdb', 'show', 'dev', vxlan]).then(parseFdb),
      mustRun(run, 'ip', ['-j', 'neigh', 'show', 'dev', vxlan]).then(parseNeigh)
    ])
  const fdb = diffEntries(desiredFdb(peers), actualFdb, fdbKey, sameFdb)
  if (!prune) fdb.remove = []
  const fdbLines = [
    ...fdb.add.map((e) => e.mac === FLOOD_MAC
      ? `fdb append ${e.mac} dev ${vxlan} dst ${e.dst} self permanent`
      : `fdb replace ${e.mac} dev ${vxlan} dst ${e.dst} self dynamic`),
    ...fdb.remove.map((e) => `fdb del ${e.mac} dev ${vxlan} dst ${e.dst} self`)
  ]
  if (fdbLines.length > 0) await mustRun(run, 'bridge', ['-batch', '-'], fdbLines.join('\n') + '\n')

  const neigh = diffEntries(desiredNeigh(peers), actualNeigh, neighKey, sameNeigh)
  if (!prune) neigh.remove = []
  const neighLines = [
    ...neigh.add.map((e) => `neigh replace ${e.ip} lladdr ${e.mac} dev ${vxlan} nud permanent`),
    ...neigh.remove.map((e) => `neigh del ${e.ip} dev ${vxlan}`)
  ]
  if (neighLines.length > 0) await mustRun(run, 'ip', ['-batch', '-'], neighLines.join('\n') + '\n')

  return {
    changes: {
      fdb: { added: fdb.add.length, removed: fdb.remove.length },
      neigh: { added: neigh.add.length, removed: neigh.remove.length }
    },
    tables: { fdb: applied(actualFdb, fdb, fdbKey), neigh: applied(actualNeigh, neigh, neighKey) }
  }
}

/** `actual` after a diff's additions (replacing their key) and removals. */
function applied<T> (actual: readonly T[], diff: { add: T[], remove: T[] }, key: (e: T) => string): T[] {
  const removed = new Set(diff.remove)
  const replaced = new Set(diff.add.map(key))
  return [...actual.filter((e) => !removed.has(e) && !replaced.has(key(e))), ...diff.add]
}
