import { describe, expect, it } from 'vitest'
import { compareText } from '../src/util/compare-text.js'

describe('compareText', () => {
  it('orders by code unit, upper case before lower, and is a consistent comparator', () => {
    expect(['web-b', 'Web-a', 'web-a', 'db', ''].sort(compareText)).toEqual(['', 'Web-a', 'db', 'web-a', 'web-b'])
    expect(compareText('a', 'a')).toBe(0)
    expect(compareText('a', 'b')).toBe(-1)
    expect(compareText('b', 'a')).toBe(1)
  })
})
