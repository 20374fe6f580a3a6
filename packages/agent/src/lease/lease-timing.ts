/**
 * Lease timing: from a small config, every instant the lease protocol acts on, and the check that
 * the config keeps the protocol safe. Pure and table-tested (test/lease-timing.spec.ts).
 *
 * Clocks: each host measures durations on its own monotonic clock, whose rate differs from real
 * time by at most `maxDrift` (a fraction; NTP-disciplined clocks are within 1e-4, a 1% bound also
 * covers VMs whose clocks are stretched by a loaded hypervisor). No instant of one host is ever
 * compared with another's.
 *
 * Why the owner is safe: say the owner sent the renewal that gathered its majority at real time T.
 * Every member of that majority received it at ≥ T and votes no sooner than `leaseMs +
 * electionMarginMs` of its own clock later, i.e. not before T + (L + M)/(1+ρ) in real time. Any
 * election needs a majority of votes, which contains one of those members, so no other host starts
 * the VM before then. The owner counts its lease from T as `ownerLeaseMs = L·(1−ρ)/(1+ρ)` of its
 * own clock (≤ L/(1+ρ) real) and starts fencing `fenceMarginMs` before that: at real time
 * ≤ T + L/(1+ρ) − F/(1−ρ). The fence is over `maxFenceMs` later at the latest, so the config is safe
 * when F/(1−ρ) + M/(1+ρ) ≥ maxFenceMs: the fence finishes before anyone may vote. Message delays
 * only make members grant later, which is on the safe side.
 */
import { LeaseConfigError } from './errors.js'

export interface LeaseTimingConfig {
  /** How long a member grants the owner, on the member's clock, from the Renew's (or vote's) receipt. */
  leaseMs: number
  /** The owner sends a Renew to every member this often. */
  renewEveryMs: number
  /** Bound on clock-rate error between any host and real time, as a fraction (0.01 = 1%). */
  maxDrift: number
  /** The owner starts fencing this long before its (drift-shortened) lease ends. */
  fenceMarginMs: number
  /**
   * How long a fence may take from the instant it is due: timer lateness (event loop) plus stopping
   * the guest (QMP `stop` pauses the vCPUs in ms; SIGKILL of QEMU in tens of ms). The fence hook
   * must keep this promise: it is what makes the margins safe.
   */
  maxFenceMs: number
  /** A member votes only this long after its grant lapsed (on its clock). */
  electionMarginMs: number
  /** Holders stand at a random instant in [0, jitter) after they may vote, so votes rarely split. */
  candidacyJitterMs: number
  /** A candidacy without a majority by then is given up, and tried again after a new jitter. */
  electionTimeoutMs: number
}

/** The derived instants (durations from the event they follow), and the config they come from. */
export interface LeaseTiming extends LeaseTimingConfig {
  /** The owner's lease, from sending the renewal that gathered a majority: L·(1−ρ)/(1+ρ). */
  ownerLeaseMs: number
  /** The owner fences this long after sending that renewal, unless a later round renewed it. */
  fenceAfterMs: number
  /** Renewal rounds that fit before a fence: rounds that may be lost without stopping the guest, + 1. */
  renewalsBeforeFence: number
  /** A member may vote this long after the receipt of its last grant: L + M. */
  voteAfterMs: number
  /** After a restart (grants forgotten), a host neither votes nor stands for this long: L + M. */
  restartQuietMs: number
  /** Worst case from a member's last grant to its candidacy: L + M + jitter. */
  candidacyByMs: number
  /** Real-time slack between the latest fence completion and the earliest vote (≥ 0 when safe). */
  safetySlackMs: number
}

/**
 * Defaults for a LAN. Aim: host death → the VM runs elsewhere within 10 s, of which a TCG boot
 * takes ~3 s. The last renewal reached the members at most just before the death, so a holder stands
 * ≤ L + M + J = 4.0 s later and an election takes a few round trips; with the boot that is ~7 s,
 * leaving room for one split vote (timeout 0.6 s + another jitter). Renewing every 0.5 s gives
 * 4 rounds before a fence (2.44 s after the last majority round), so 3 lost rounds in a row are
 * needed to stop a healthy guest; members renew 2 messages per VM per 0.5 s, batched per peer.
 */
export const DEFAULT_LEASE_TIMING: LeaseTimingConfig = {
  leaseMs: 3000,
  renewEveryMs: 500,
  maxDrift: 0.01,
  fenceMarginMs: 500,
  maxFenceMs: 400,
  electionMarginMs: 500,
  candidacyJitterMs: 500,
  electionTimeoutMs: 600
}

/** For tests on one machine: the same shape at half the scale. */
export const LOCAL_LEASE_TIMING: LeaseTimingConfig = {
  leaseMs: 1500,
  renewEveryMs: 250,
  maxDrift: 0.01,
  fenceMarginMs: 250,
  maxFenceMs: 200,
  electionMarginMs: 250,
  candidacyJitterMs: 250,
  electionTimeoutMs: 300
}

/** Validates `config` and derives every duration; throws LeaseConfigError saying what to change. */
export function leaseTiming (config: Partial<LeaseTimingConfig> = {}): LeaseTiming {
  const c: LeaseTimingConfig = { ...DEFAULT_LEASE_TIMING, ...config }
  for (const key of ['leaseMs', 'renewEveryMs', 'fenceMarginMs', 'maxFenceMs', 'electionMarginMs', 'candidacyJitterMs', 'electionTimeoutMs'] as const) {
    const v = c[key]
    if (!Number.isSafeInteger(v) || v < 0) throw new LeaseConfigError(`${key} must be a non-negative integer of ms, not ${String(v)}`)
  }
  if (!(c.maxDrift >= 0 && c.maxDrift < 0.1)) throw new LeaseConfigError(`maxDrift is a fraction in [0, 0.1), not ${String(c.maxDrift)}`)
  if (c.renewEveryMs < 10) throw new LeaseConfigError(`renewEveryMs ${c.renewEveryMs} is below 10 ms: it would flood the group`)
  if (c.fenceMarginMs === 0) throw new LeaseConfigError('fenceMarginMs must be > 0: the owner fences before its lease ends, not at the end')
  const rho = c.maxDrift
  const ownerLeaseMs = Math.floor(c.leaseMs * (1 - rho) / (1 + rho))
  const fenceAfterMs = ownerLeaseMs - c.fenceMarginMs
  if (fenceAfterMs <= 0) throw new LeaseConfigError(`fenceMarginMs ${c.fenceMarginMs} leaves no lease (owner lease ${ownerLeaseMs} ms after drift): lengthen leaseMs`)
  const renewalsBeforeFence = Math.floor(fenceAfterMs / c.renewEveryMs)
  if (renewalsBeforeFence < 2) {
    throw new LeaseConfigError(`only ${renewalsBeforeFence} renewal(s) of ${c.renewEveryMs} ms fit in the ${fenceAfterMs} ms before a fence: one lost Renew would stop the guest; renew at most every ${Math.floor(fenceAfterMs / 2)} ms or lengthen leaseMs`)
  }
  // Latest fence start: fenceAfter/(1−ρ) real after T; earliest vote: (L+M)/(1+ρ) real after T.
  const safetySlackMs = Math.floor((c.leaseMs + c.electionMarginMs) / (1 + rho) - fenceAfterMs / (1 - rho) - c.maxFenceMs)
  if (safetySlackMs < 0) {
    throw new LeaseConfigError(`unsafe: a fence may finish ${-safetySlackMs} ms after the earliest vote; raise fenceMarginMs or electionMarginMs to cover maxFenceMs ${c.maxFenceMs} under drift ${rho}`)
  }
  if (c.electionTimeoutMs === 0 || c.electionTimeoutMs * 2 > fenceAfterMs) {
    throw new LeaseConfigError(`electionTimeoutMs ${c.electionTimeoutMs} must be in (0, ${Math.floor(fenceAfterMs / 2)}]: a winner's lease counts from its RequestVote, and must outlast the election`)
  }
  const voteAfterMs = c.leaseMs + c.electionMarginMs
  return {
    ...c,
    ownerLeaseMs,
    fenceAfterMs,
    renewalsBeforeFence,
    voteAfterMs,
    restartQuietMs: voteAfterMs,
    candidacyByMs: voteAfterMs + c.candidacyJitterMs,
    safetySlackMs
  }
}

/** The owner's instants for a majority gathered by the round sent at `sentAt` (its clock). */
export function ownerInstants (t: LeaseTiming, sentAt: number): { expiresAt: number, fenceAt: number, nextRenewAt: number } {
  return { expiresAt: sentAt + t.ownerLeaseMs, fenceAt: sentAt + t.fenceAfterMs, nextRenewAt: sentAt + t.renewEveryMs }
}

/** A member's instants for a grant received at `receivedAt` (its clock) of `leaseMs`. */
export function memberInstants (t: LeaseTiming, receivedAt: number, leaseMs = t.leaseMs): { grantedUntil: number, votableAt: number } {
  return { grantedUntil: receivedAt + leaseMs, votableAt: receivedAt + leaseMs + t.electionMarginMs }
}

/** Majority of a group of `n` hosts. */
export function majority (n: number): number {
  return Math.floor(n / 2) + 1
}
