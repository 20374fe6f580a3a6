import { describe, expect, it } from 'vitest'
import { assertLegal, isLegal, type VmAction, type VmState } from '../src/index.js'

describe('VM lifecycle', () => {
  it.each<[VmAction, VmState, boolean]>([
    ['start', 'created', true], ['start', 'stopped', true], ['start', 'crashed', true], ['start', 'running', false],
    ['stop', 'running', true], ['stop', 'created', false], ['stop', 'stopped', false],
    ['kill', 'running', true], ['kill', 'crashed', false],
    ['recover', 'running', true], ['destroy', 'running', true], ['destroy', 'created', true]
  ])('%s when %s → %s', (action, state, legal) => {
    expect(isLegal(action, state)).toBe(legal)
    if (legal) expect(() => { assertLegal('vm', action, state) }).not.toThrow()
    else expect(() => { assertLegal('vm', action, state) }).toThrow(expect.objectContaining({ code: 'ERR_WRONG_STATE', name: 'WrongStateError' }))
  })
})
