import { describe, expect, it } from 'vitest'
import { guestPauseMs } from '../src/migrate/guest-pause.js'

describe('guestPauseMs: source STOP → destination RESUME', () => {
  it.each<[string, number | null | undefined, number | null | undefined, number | undefined]>([
    ['both stamps', 1_700_000_000_000, 1_700_000_000_021, 21],
    ['resumed in the same ms', 1_700_000_000_000, 1_700_000_000_000, 0],
    ['no stop stamp (an older source)', 0, 1_700_000_000_021, undefined],
    ['no resume stamp (an older destination)', 1_700_000_000_000, undefined, undefined],
    ['null stamps', null, null, undefined],
    ['clocks skewed more than the pause', 1_700_000_000_050, 1_700_000_000_021, undefined]
  ])('%s', (_what, stopped, resumed, pause) => {
    expect(guestPauseMs(stopped, resumed)).toBe(pause)
  })
})
