/**
 * The lease protocol's domain types (wire types stop at lease-codec.ts). Times are milliseconds on
 * the local host's monotonic clock: no two hosts' instants are ever compared, only durations.
 */

/** A holder's replica point, as it votes with it: newer epoch, then higher seq, then later takenAt. */
export interface LeasePosition {
  epoch: number
  seq: number
  takenAt: number
}

/** Why a member refused a Renew or a RequestVote (stable codes, on the wire as an enum). */
export type LeaseRefusal =
  /** The request's epoch is older than one this member knows. */
  | 'stale-epoch'
  /** This member already voted for another candidate (or knows another owner) at that epoch. */
  | 'promised'
  /** Its grant to the current owner has not lapsed (+ election margin): the owner may be alive. */
  | 'lease-held'
  /** It restarted less than a lease ago and may have forgotten a grant. */
  | 'restarting'
  /** The candidate is not in the group this member knows. */
  | 'not-member'
  /** This host knows nothing of the VM. */
  | 'unknown-vm'
  /** This member's replica is fresher than the candidate's (it will stand itself). */
  | 'fresher-here'
  /** This host owns the VM and its lease has not lapsed. */
  | 'owner-alive'
  | 'invalid'

/** The owner's renewal of its lease, sent to every other member of the group. */
export interface Renew {
  type: 'renew'
  vmId: string
  epoch: number
  /** The whole group: owner first, then holders and witness. */
  members: string[]
  /** How long the member grants, on its own clock from receipt. */
  leaseMs: number
  /** The owner's round number (it remembers when it sent each). */
  round: number
  /**
   * A live migration hands the VM over: `to` will renew at `epoch` (this Renew's epoch + 1). A member
   * takes a higher epoch from a host outside its group only with this, from the owner it knows.
   */
  handover?: { to: string, epoch: number }
}

export interface Granted {
  type: 'granted'
  vmId: string
  epoch: number
  round: number
}

/** What a member knows that the requester does not. */
export interface Knowledge {
  /** The highest epoch this member knows of. */
  knownEpoch: number
  /** Who holds or stands for that epoch ('' when nobody known). */
  owner: string
  /** Whether `owner` is confirmed (renewed as owner at knownEpoch), not only voted for. */
  elected: boolean
}

export interface Refused extends Knowledge {
  type: 'refused'
  vmId: string
  epoch: number
  round: number
  reason: LeaseRefusal
}

/** A holder standing for `epoch` (> the epoch it knows) with its replica position. */
export interface RequestVote {
  type: 'request-vote'
  vmId: string
  epoch: number
  /** The group as the candidate knows it (owner of the last epoch first). */
  members: string[]
  position: LeasePosition
  round: number
  /** A pre-vote: would the member vote? It answers by the same rules but promises nothing. */
  preVote?: boolean
}

export interface Vote extends Knowledge {
  type: 'vote'
  vmId: string
  epoch: number
  round: number
  granted: boolean
  reason?: LeaseRefusal
}

export type LeaseMessage = Renew | Granted | Refused | RequestVote | Vote
export type LeaseRequestMessage = Renew | RequestVote
export type LeaseAnswerMessage = Granted | Refused | Vote

/** What a host keeps durably per VM, written before any answer that depends on it leaves. */
export interface PersistedLease {
  vmId: string
  /** The highest epoch this host knows of; it refuses anything older, forever. */
  epoch: number
  /** Who it voted for at `epoch` (at most one vote per epoch). */
  votedFor?: string
  /** The owner at `epoch` as far as it knows ('' none) and whether confirmed by a Renew. */
  owner: string
  elected: boolean
  /** The group, owner of `epoch` first. */
  members: string[]
  /**
   * An owner's group change not yet proven by both groups: the group it changed from. A restarted
   * owner starts from it, so a restart never skips the old group's majority.
   */
  previousMembers?: string[]
}

export type LeaseEventType =
  | 'lease-acquired' | 'lease-lost' | 'fenced' | 'resumed' | 'candidate' | 'election-lost'
  | 'elected' | 'promoted' | 'demoted' | 'restarted'

export interface LeaseEvent {
  type: LeaseEventType
  vmId: string
  epoch: number
  /** Local clock, ms. */
  at: number
  detail?: string
}

export type LeaseEffect =
  | { type: 'send', to: string, message: LeaseRequestMessage }
  | { type: 'fence', vmId: string, reason: string }
  | { type: 'resume', vmId: string }
  | { type: 'promote', vmId: string, epoch: number }
  | { type: 'demote', vmId: string, epoch: number, owner?: string }
  | { type: 'persist', state: PersistedLease }
  /** The owner's lease was proven further: it fences at `fenceAt` (local ms) unless renewed again. */
  | { type: 'renewed', vmId: string, epoch: number, fenceAt: number }
  | { type: 'event', event: LeaseEvent }

/** What one message did: the answer to send back (to a request) and the effects to carry out. */
export interface LeaseOutcome {
  reply?: LeaseAnswerMessage
  effects: LeaseEffect[]
}

/** A VM's lease as seen from this host (for `vm show`). */
export interface LeaseState {
  vmId: string
  role: 'owner' | 'member' | 'candidate'
  epoch: number
  owner: string
  members: string[]
  /** Owner: whether the guest may run (false: fenced). */
  running?: boolean
  /** Owner: when its lease ends (local ms), and when it fences unless renewed. */
  expiresAt?: number
  fenceAt?: number
  /** Member: until when it grants the owner (local ms). */
  grantedUntil?: number
  /** Member: the earliest instant it may vote or stand. */
  votableAt?: number
}
