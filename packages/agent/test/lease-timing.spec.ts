import { describe, expect, it } from 'vitest'
import { DEFAULT_LEASE_TIMING, leaseTiming, LOCAL_LEASE_TIMING, majority, memberInstants, ownerInstants } from '../src/lease/lease-timing.js'

describe('lease timing', () => {
  it.each([
    // name, config, ownerLeaseMs, fenceAfterMs, renewals, voteAfterMs, candidacyByMs, slack
    ['defaults (LAN)', DEFAULT_LEASE_TIMING, 2940, 2440, 4, 3500, 4000, 600],
    ['local tests', LOCAL_LEASE_TIMING, 1470, 1220, 4, 1750, 2000, 300],
    ['no drift', { ...DEFAULT_LEASE_TIMING, maxDrift: 0 }, 3000, 2500, 5, 3500, 4000, 600],
    ['5% drift', { ...DEFAULT_LEASE_TIMING, maxDrift: 0.05, fenceMarginMs: 500 }, 2714, 2214, 4, 3500, 4000, 602],
    ['long lease', { ...DEFAULT_LEASE_TIMING, leaseMs: 10_000, renewEveryMs: 2000 }, 9801, 9301, 4, 10_500, 11_000, 601]
  ])('%s', (_name, config, ownerLeaseMs, fenceAfterMs, renewalsBeforeFence, voteAfterMs, candidacyByMs, safetySlackMs) => {
    const t = leaseTiming(config)
    expect({ ownerLeaseMs: t.ownerLeaseMs, fenceAfterMs: t.fenceAfterMs, renewalsBeforeFence: t.renewalsBeforeFence, voteAfterMs: t.voteAfterMs, candidacyByMs: t.candidacyByMs, safetySlackMs: t.safetySlackMs })
      .toEqual({ ownerLeaseMs, fenceAfterMs, renewalsBeforeFence, voteAfterMs, candidacyByMs, safetySlackMs })
    expect(t.restartQuietMs).toBe(t.voteAfterMs)
  })

  it.each([
    ['negative lease', { leaseMs: -1 }, /leaseMs must be a non-negative integer/],
    ['fractional renew', { renewEveryMs: 2.5 }, /renewEveryMs must be a non-negative integer/],
    ['drift out of range', { maxDrift: 0.2 }, /maxDrift is a fraction/],
    ['renewal flood', { renewEveryMs: 5 }, /below 10 ms/],
    ['no fence margin', { fenceMarginMs: 0 }, /fenceMarginMs must be > 0/],
    ['margin eats the lease', { fenceMarginMs: 3000 }, /leaves no lease/],
    ['one renewal per lease', { renewEveryMs: 1500 }, /only 1 renewal/],
    ['fence slower than the margins', { fenceMarginMs: 100, electionMarginMs: 0, maxFenceMs: 400 }, /unsafe: a fence may finish/],
    ['margins that add up to less than a fence', { fenceMarginMs: 100, electionMarginMs: 50, maxFenceMs: 200 }, /unsafe/],
    ['election outlasting the lease', { electionTimeoutMs: 2000 }, /electionTimeoutMs 2000 must be in/],
    ['no election timeout', { electionTimeoutMs: 0 }, /electionTimeoutMs 0 must be in/]
  ])('refuses %s', (_name, config, message) => {
    expect(() => leaseTiming(config)).toThrow(message)
    try { leaseTiming(config) } catch (err) { expect((err as { code: string }).code).toBe('ERR_LEASE_CONFIG') }
  })

  it('derives the instants from a round or a grant', () => {
    const t = leaseTiming()
    expect(ownerInstants(t, 10_000)).toEqual({ expiresAt: 12_940, fenceAt: 12_440, nextRenewAt: 10_500 })
    expect(memberInstants(t, 5000)).toEqual({ grantedUntil: 8000, votableAt: 8500 })
    expect(memberInstants(t, 5000, 1000)).toEqual({ grantedUntil: 6000, votableAt: 6500 })
  })

  it('keeps the safety inequality on a grid of configs it accepts', () => {
    for (const leaseMs of [500, 1000, 3000, 10_000]) {
      for (const maxDrift of [0, 0.001, 0.01, 0.05]) {
        for (const fenceMarginMs of [50, 200, 500]) {
          for (const electionMarginMs of [0, 100, 500]) {
            let t
            try { t = leaseTiming({ leaseMs, maxDrift, fenceMarginMs, electionMarginMs, renewEveryMs: Math.max(10, Math.floor(leaseMs / 8)), maxFenceMs: 100, electionTimeoutMs: 50 }) } catch { continue }
            // latest fence end (real) ≤ earliest vote (real), from the same send instant
            const fenceEnd = t.fenceAfterMs / (1 - maxDrift) + t.maxFenceMs
            const firstVote = (t.leaseMs + t.electionMarginMs) / (1 + maxDrift)
            expect(fenceEnd).toBeLessThanOrEqual(firstVote)
          }
        }
      }
    }
  })

  it('majority', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map(majority)).toEqual([1, 2, 2, 3, 3, 4, 4])
  })
})
