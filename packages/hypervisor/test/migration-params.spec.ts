import { describe, expect, it } from 'vitest'
import { checkMultifdChannels, MIGRATION_BANDWIDTH_BYTES_PER_SEC, MIGRATION_DOWNTIME_LIMIT_MS, migrationStatus, mirrorProgress, resolveMigrationParams, type MigrateOutOptions } from '../src/index.js'

describe('resolveMigrationParams', () => {
  it('fills the defaults: far above QEMU\'s 128 MiB/s cap, the bench\'s 10 ms downtime limit with auto-converge, cancel on timeout', () => {
    expect(resolveMigrationParams({})).toEqual({
      bandwidthBytesPerSec: MIGRATION_BANDWIDTH_BYTES_PER_SEC, downtimeLimitMs: MIGRATION_DOWNTIME_LIMIT_MS,
      timeoutMs: 600_000, onTimeout: 'cancel', autoConverge: true, progressIntervalMs: 250
    })
    expect(MIGRATION_BANDWIDTH_BYTES_PER_SEC).toBeGreaterThan(128 * 1024 * 1024)
    expect(MIGRATION_DOWNTIME_LIMIT_MS).toBe(10)
    expect(resolveMigrationParams({ autoConverge: false }).autoConverge).toBe(false)
  })

  it.each([[undefined, true], [1, true], [16, true], [0, false], [17, false], [1.5, false]])('multifd channels %s accepted: %s', (channels, ok) => {
    if (ok) expect(() => { checkMultifdChannels(channels) }).not.toThrow()
    else expect(() => { checkMultifdChannels(channels) }).toThrow(/multifd channels/)
  })

  it.each<[string, Partial<MigrateOutOptions>]>([
    ['bandwidth below 1 MiB/s', { bandwidthBytesPerSec: 1000 }],
    ['fractional bandwidth', { bandwidthBytesPerSec: 2 ** 21 + 0.5 }],
    ['zero downtime limit', { downtimeLimitMs: 0 }],
    ['downtime limit over a minute', { downtimeLimitMs: 60_001 }],
    ['tiny timeout', { timeoutMs: 5 }],
    ['unknown timeout action', { onTimeout: 'pause' as 'cancel' }],
    ['non-boolean auto-converge', { autoConverge: 'yes' as unknown as boolean }],
    ['NaN progress interval', { progressIntervalMs: Number.NaN }]
  ])('refuses %s', (_what, options) => {
    expect(() => resolveMigrationParams(options)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_MIGRATION_PARAMS' }))
  })
})

describe('migrationStatus', () => {
  it.each([
    [{ status: 'active', ram: { transferred: 10, remaining: 90, total: 100, 'dirty-pages-rate': 5, mbps: 800, 'dirty-sync-count': 2 } }, 'active', false, 10, undefined],
    [{ status: 'completed', downtime: 7, 'total-time': 120, ram: { transferred: 100 } }, 'completed', true, 100, 7],
    [{ status: 'failed', 'error-desc': 'Unable to write to socket' }, 'failed', true, 0, undefined],
    [{}, 'none', false, 0, undefined]
  ])('reads %j', (info, status, terminal, transferred, downtime) => {
    const s = migrationStatus(info)
    expect(s.status).toBe(status)
    expect(s.terminal).toBe(terminal)
    expect(s.ram.transferredBytes).toBe(transferred)
    expect(s.downtimeMs).toBe(downtime)
  })

  it('sums only our mirror jobs', () => {
    expect(mirrorProgress([{ device: 'migrate-vda', len: 100, offset: 40 }, { device: 'backup-x', len: 999, offset: 1 }, { device: 'migrate-vdb', len: 50, offset: 50 }], ['migrate-vda', 'migrate-vdb']))
      .toEqual({ copiedBytes: 90, totalBytes: 150 })
  })
})
