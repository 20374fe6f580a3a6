import { describe, expect, it } from 'vitest'
import { withoutConsoleNoise } from '@meshvirt/testkit'

describe('inGuest output: the shared serial console\'s noise is dropped', () => {
  it('drops the test guest\'s own lines, keeps the command\'s (kernel lines too: dmesg prints them)', () => {
    // As CI saw it: the guest's counter landed between the markers of `cat /sys/block/vda/size`.
    expect(withoutConsoleNoise('MESHVIRT-COUNTER 51\n196608')).toBe('196608')
    expect(withoutConsoleNoise('2\nMESHVIRT-COUNTER 7\n')).toBe('2\n')
    expect(withoutConsoleNoise('[    0.000000] Memory: 1K/2K available\nMemTotal:  207560 kB')).toBe('[    0.000000] Memory: 1K/2K available\nMemTotal:  207560 kB')
  })
})
