/**
 * Orders strings by UTF-16 code unit: the same order on every host, whatever its Node build.
 *
 * `localeCompare` orders by the ICU collator of the process's locale, which can differ between
 * hosts (ICU version, `LANG`), and some of these orders break ties that two hosts must agree on
 * (who holds a lease, which image holder ranks first). Ids, names and MAC addresses need a stable
 * order, not a linguistic one. (Avoiding the collator would also spare ~2 MB of ICU data pages,
 * but libp2p's peer store builds one anyway.)
 */
export function compareText (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
