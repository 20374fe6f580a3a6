import { FLOOD_MAC } from './constants.js'
import { diffEntries } from './diff.js'
import { desiredFdb, desiredNeigh, fdbKey, neighKey, parseFdb, parseNeigh, sameFdb, sameNeigh } from './forwarding.js'
import { mustRun } from './runner.js'
import type { CommandRunner } from './runner.js'
import type { NetworkPeers } from './types.js'

/** Counts of what one programming pass changed (both zero on a second pass with the same peers). */
export interface ForwardingChanges {
  fdb: { added: number, removed: number }
  neigh: { added: number, removed: number }
}

/**
 * Brings a VXLAN device's forwarding and neighbour entries to what `peers` call for: reads what the
 * kernel has (`-j`), diffs, and applies the difference in one `-batch` per tool. Additions go first,
 * so a moving MAC is replaced in place and a host joining floods before a leaving one stops.
 * Entries for `self` (this host's underlay address) are left out. `prune` false: nothing is removed.
 */
export async function programForwarding (run: CommandRunner, vxlan: string, peers: NetworkPeers, self?: string, prune = true): Promise<ForwardingChanges> {
  // An entry pointing at this host itself would loop its own floods back: gossip may well list it.
  if (self !== undefined) peers = { floodTo: peers.floodTo.filter((u) => u !== self), nics: peers.nics.filter((n) => n.underlay !== self) }
  const fdb = diffEntries(desiredFdb(peers), parseFdb(await mustRun(run, 'bridge', ['-j', 'fdb', 'show', 'dev', vxlan])), fdbKey, sameFdb)
  if (!prune) fdb.remove = []
  const fdbLines = [
    ...fdb.add.map((e) => e.mac === FLOOD_MAC
      ? `fdb append ${e.mac} dev ${vxlan} dst ${e.dst} self permanent`
      : `fdb replace ${e.mac} dev ${vxlan} dst ${e.dst} self permanent`),
    ...fdb.remove.map((e) => `fdb del ${e.mac} dev ${vxlan} dst ${e.dst} self`)
  ]
  if (fdbLines.length > 0) await mustRun(run, 'bridge', ['-batch', '-'], fdbLines.join('\n') + '\n')

  const neigh = diffEntries(desiredNeigh(peers), parseNeigh(await mustRun(run, 'ip', ['-j', 'neigh', 'show', 'dev', vxlan])), neighKey, sameNeigh)
  if (!prune) neigh.remove = []
  const neighLines = [
    ...neigh.add.map((e) => `neigh replace ${e.ip} lladdr ${e.mac} dev ${vxlan} nud permanent`),
    ...neigh.remove.map((e) => `neigh del ${e.ip} dev ${vxlan}`)
  ]
  if (neighLines.length > 0) await mustRun(run, 'ip', ['-batch', '-'], neighLines.join('\n') + '\n')

  return {
    fdb: { added: fdb.add.length, removed: fdb.remove.length },
    neigh: { added: neigh.add.length, removed: neigh.remove.length }
  }
}
