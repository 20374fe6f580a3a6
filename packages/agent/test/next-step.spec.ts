import { describe, expect, it } from 'vitest'
import { needsObservation, nextStep, type Observed, type Step } from '../src/vm/next-step.js'
import type { DesiredState, VmRunState } from '../src/store/state-store.js'

type Row = [VmRunState, DesiredState, Observed | undefined, boolean, boolean, Step]

describe('the owner\'s next step for a VM (record, what the driver sees, lease)', () => {
  it.each<Row>([
    // state, desired, observed, mayRun, force → step
    ['incoming', 'running', undefined, true, false, { do: 'leave-to-migration' }],
    ['migrating', 'running', undefined, true, false, { do: 'leave-to-migration' }],
    ['migrating', 'deleted', undefined, true, false, { do: 'leave-to-migration' }],
    ['running', 'deleted', undefined, true, false, { do: 'destroy' }],
    ['fenced', 'deleted', undefined, false, false, { do: 'destroy' }],
    ['fenced', 'running', 'running', false, false, { do: 'keep-down' }],
    ['fenced', 'running', 'absent', true, false, { do: 'keep-down' }],
    ['pending', 'running', 'running', true, false, { do: 'record', state: 'running' }],
    ['pending', 'running', 'absent', true, false, { do: 'start', create: true }],
    ['crashed', 'running', 'not-running', true, false, { do: 'start', create: false }],
    ['failed', 'running', 'absent', true, false, { do: 'start', create: true }],
    ['pending', 'running', 'absent', false, false, { do: 'wait-for-lease' }],
    ['crashed', 'running', 'not-running', false, false, { do: 'wait-for-lease' }],
    ['running', 'running', 'running', false, false, { do: 'record', state: 'running' }],
    ['running', 'stopped', 'running', true, false, { do: 'stop', force: false }],
    ['running', 'stopped', 'running', true, true, { do: 'stop', force: true }],
    ['fenced', 'stopped', 'running', false, false, { do: 'stop', force: false }],
    ['stopping', 'stopped', 'not-running', true, false, { do: 'record', state: 'stopped' }],
    ['running', 'stopped', 'absent', true, false, { do: 'record', state: 'stopped' }]
  ])('%s, wants %s, driver sees %s, may run %s, force %s', (state, desired, observed, mayRun, force, step) => {
    expect(nextStep({ state, desired }, observed, { mayRun, force })).toEqual(step)
  })

  it.each<[VmRunState, DesiredState, boolean]>([
    ['incoming', 'running', false],
    ['migrating', 'stopped', false],
    ['running', 'deleted', false],
    ['fenced', 'running', true],
    ['pending', 'running', true],
    ['running', 'stopped', true]
  ])('%s wanting %s needs the driver\'s view: %s', (state, desired, needed) => {
    expect(needsObservation({ state, desired })).toBe(needed)
  })
})
