/**
 * The host's state, one SQLite file in the data dir (WAL mode). Versioned by `PRAGMA
 * user_version`; a migration only ever adds.
 */
export const MIGRATIONS: string[] = [
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

  -- VMs this host owns. Resources are the host's allocation for the VM (the ledger sums them).
  CREATE TABLE vms (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    vm_group TEXT NOT NULL DEFAULT '',
    spec BLOB NOT NULL,              -- meshvirt.v1.VmSpec
    placement BLOB,                  -- meshvirt.v1.PlacementExplanation
    owner TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    state TEXT NOT NULL,             -- what the VM is doing
    desired TEXT NOT NULL,           -- running | stopped: what the agent drives it towards
    vcpus INTEGER NOT NULL,
    memory_bytes INTEGER NOT NULL,
    disk_bytes INTEGER NOT NULL,
    idempotency_key TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    started_at INTEGER,
    last_error TEXT
  );
  CREATE INDEX vms_name ON vms(name);

  -- Resources promised to a broker for a short TTL; expired rows are swept before every decision.
  CREATE TABLE reservations (
    token TEXT PRIMARY KEY,
    request_id TEXT NOT NULL UNIQUE,
    broker_id TEXT NOT NULL,
    vcpus INTEGER NOT NULL,
    memory_bytes INTEGER NOT NULL,
    disk_bytes INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL
  );

  -- Names this host is the authority for (rendezvous hashing). expires_at NULL once bound.
  CREATE TABLE name_claims (
    name TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL,
    vm_id TEXT NOT NULL,
    broker_id TEXT NOT NULL DEFAULT '',
    owner TEXT NOT NULL DEFAULT '',
    expires_at INTEGER
  );
  `,
  `
  -- The last live migration of a VM this host owns (meshvirt.v1.MigrationRecord).
  ALTER TABLE vms ADD COLUMN last_migration BLOB;
  `,
  `
  -- Owner side: the holders of the replicas of VMs this host owns, and the point each holds.
  CREATE TABLE replica_holders (
    vm_id TEXT NOT NULL,
    holder TEXT NOT NULL,
    epoch INTEGER NOT NULL DEFAULT 0,    -- the point held: owner epoch, seq, the instant it describes
    seq INTEGER NOT NULL DEFAULT 0,
    taken_at INTEGER NOT NULL DEFAULT 0,
    applied_at INTEGER NOT NULL DEFAULT 0,
    sent_bytes INTEGER NOT NULL DEFAULT 0,
    added_at INTEGER NOT NULL,
    last_error TEXT,
    PRIMARY KEY (vm_id, holder)
  );

  -- Holder side: replicas this host keeps for other owners. Their disk counts in the ledger.
  CREATE TABLE held_replicas (
    vm_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    epoch INTEGER NOT NULL,              -- the owner's epoch as last told
    spec BLOB NOT NULL,                  -- meshvirt.v1.VmSpec: what a promotion starts
    holders TEXT NOT NULL,               -- JSON array: the VM's replica group as the owner last told it
    disk_bytes INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  `,
  `
  -- The lease protocol's durable record per replicated VM this host owns, holds or witnesses:
  -- the highest epoch known, the vote given in it, the group (JSON, lease/types.ts PersistedLease).
  CREATE TABLE leases (
    vm_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_at INTEGER NOT NULL
  );
  `,
  `
  -- What the lease did here per VM (lost, fenced, elected, promoted…), for vm show: kept across
  -- agent restarts, the newest few per VM (lease-records.ts), removed with the VM.
  CREATE TABLE lease_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    vm_id TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    type TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    detail TEXT NOT NULL,
    host_id TEXT NOT NULL
  );
  CREATE INDEX lease_history_by_vm ON lease_history (vm_id, id);
  `,
  `
  -- What this host last heard other hosts' adverts say of the VMs they own, so a VM whose owner
  -- dies is still listed (as unknown) after this agent restarts (vm-records.ts).
  CREATE TABLE known_vms (
    vm_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    owner_hostname TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    state TEXT NOT NULL,                 -- the state as gossiped (VmState name, e.g. running)
    vm_group TEXT NOT NULL DEFAULT '',
    vcpus INTEGER NOT NULL,
    memory_bytes INTEGER NOT NULL,
    disk_bytes INTEGER NOT NULL,
    last_heard_at INTEGER NOT NULL       -- this host's clock, refreshed at most every few tens of seconds
  );
  -- VMs deleted with --force while their owner was dead: kept (bounded, expiring) and exchanged
  -- between hosts, so an owner that returns deletes its copy instead of starting it.
  CREATE TABLE vm_tombstones (
    vm_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    deleted_at INTEGER NOT NULL
  );
  CREATE INDEX vm_tombstones_by_age ON vm_tombstones (deleted_at);
  `,
  `
  -- The group of the VM a reservation is for: a host's anti-affinity check counts the members
  -- it has promised as well as those it runs (ledger/group-policy.ts).
  ALTER TABLE reservations ADD COLUMN vm_group TEXT NOT NULL DEFAULT '';
  `,
  `
  -- Every virtual network this host knows of (meshvirt.v1.Network), tombstones of deleted ones
  -- included: gossiped in the advert, merged by network/network-record.ts's rule.
  CREATE TABLE networks (
    name TEXT PRIMARY KEY,
    record BLOB NOT NULL
  );
  `,
  `
  -- Every VM group this host knows of (meshvirt.v1.VmGroup), tombstones included: gossiped in the
  -- advert, merged by vm-group/group-record.ts's rule.
  CREATE TABLE vm_groups (
    name TEXT PRIMARY KEY,
    record BLOB NOT NULL
  );
  `
]
