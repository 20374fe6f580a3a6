/**
 * Bounds every decoded HostAdvert must respect. Generous for real hosts, small enough that a
 * peer cannot make 1,000 views hold megabytes per host.
 */
export const ADVERT_LIMITS = Object.freeze({
  /** Encoded advert; a host with 1,000 VM summaries stays well below it. */
  maxBytes: 256 * 1024,
  maxHostIdChars: 128,
  maxAddrs: 32,
  maxAddrChars: 256,
  maxLabels: 64,
  maxLabelKeyChars: 63,
  maxLabelValueChars: 256,
  maxTextChars: 256,
  maxCpuFlags: 1024,
  maxCpuFlagChars: 64,
  maxMachineTypes: 256,
  maxVms: 4096,
  maxVmIdChars: 128,
  /** NICs per VM (PCI slot 2, functions 0–3). */
  maxNics: 4,
  /** Networks (and their tombstones) a host gossips. */
  maxNetworks: 512,
  /** VM groups (and their tombstones) a host gossips; each one's encoded template at most this. */
  maxGroups: 128,
  maxGroupTemplateBytes: 8192,
  /** Revoked users a host gossips (a revocation lasts as long as the longest token it covers). */
  maxRevocations: 256,
  /** Images (held or being fetched) and image tombstones a host gossips, each. */
  maxImages: 512,
  maxImageRefs: 32,
  /** The have-bitmap of an image being fetched: 64 Ki chunks (64 GiB at 1 MiB). */
  maxHaveBytes: 8192,
  /** Overcommit ratios above this are operator typos, not policy. */
  maxOvercommit: 64,
  maxHeartbeatIntervalMs: 3_600_000
})

/** base58btc peer ids (Ed25519 `12D3Koo…`, RSA `Qm…`). */
export const HOST_ID_PATTERN = /^[1-9A-HJ-NP-Za-km-z]{32,128}$/
/** Kubernetes-like label keys: zone, rack, site, topology.meshvirt.io/zone, … */
export const LABEL_KEY_PATTERN = /^[A-Za-z0-9]([A-Za-z0-9._/-]*[A-Za-z0-9])?$/
