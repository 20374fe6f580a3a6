/** The IANA VXLAN port (RFC 7348). */
export const VXLAN_PORT = 4789
/**
 * How long the VXLAN device keeps a forwarding entry that nothing refreshes (s): a day. Entries are
 * dynamic so that learning can move them (a MAC that moved to another host is followed at its first
 * frame from there); what the agent programs is refreshed by the traffic it carries and re-learnt by
 * the next frame if it ever ages out. Below 2^32 / HZ: the kernel counts it in jiffies.
 */
export const VXLAN_AGEING_S = 86_400

/**
 * Bytes VXLAN adds to each guest frame on an IPv4 underlay: outer IPv4 (20) + UDP (8) + VXLAN (8)
 * + the inner Ethernet header (14), which the guest's MTU does not count.
 */
export const VXLAN_OVERHEAD = 50

/** The guest MTU that fits an underlay of `underlayMtu` without fragmenting: underlayMtu − 50. */
export function defaultGuestMtu (underlayMtu: number): number {
  return underlayMtu - VXLAN_OVERHEAD
}

/** The nftables table the Linux driver owns and rewrites whole (`inet` family). */
export const NFT_TABLE = 'meshvirt'

/** How often the Linux driver checks that each network's dnsmasq is alive (and restarts it). */
export const SUPERVISE_INTERVAL_MS = 5_000

/** The dnsmasq binary of Debian's dnsmasq-base. */
export const DNSMASQ = '/usr/sbin/dnsmasq'

/** The all-zero MAC of a VXLAN flood (BUM) entry. */
export const FLOOD_MAC = '00:00:00:00:00:00'
