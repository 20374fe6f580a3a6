import { DiskFullError, ImageMissingError, InvalidSpecError, MigrationFailedError, WrongStateError } from '@meshvirt/hypervisor'
import { describe, expect, it } from 'vitest'
import { CODE_OF, ControlError, toControlError } from '../src/control/errors.js'
import { driverRefusal } from '../src/vm/vm-resize.js'

describe('one translation of typed errors to the control API', () => {
  it.each([
    ['a missing image', new ImageMissingError('no such kernel'), 'NOT_FOUND', 'ERR_IMAGE_MISSING'],
    ['a full disk', new DiskFullError('disk full'), 'NO_CAPACITY', 'ERR_DISK_FULL'],
    ['a spec the driver refuses', new InvalidSpecError('too small'), 'INVALID_ARGUMENT', 'ERR_INVALID_SPEC'],
    ['a wrong state', new WrongStateError('it is stopped'), 'WRONG_STATE', 'ERR_WRONG_STATE'],
    ['a failed migration', new MigrationFailedError('peer vanished'), 'MIGRATION_FAILED', 'ERR_MIGRATION_FAILED']
  ])('%s keeps its code: %s → %s', (_what, err, code, driverCode) => {
    const e = toControlError(err, 'FAILED', 'VM web-1 failed to start')
    expect(e).toBeInstanceOf(ControlError)
    expect(e).toMatchObject({ code, details: { driverCode }, message: `VM web-1 failed to start: ${err.message}` })
  })

  it('a ControlError crosses as it is; an unnamed error takes the fallback, INTERNAL by default; a code outside the table too', () => {
    const own = new ControlError('NAME_TAKEN', 'taken', { owner: 'h1' })
    expect(toControlError(own, 'FAILED', 'ignored')).toBe(own)
    expect(toControlError(new Error('boom'))).toMatchObject({ code: 'INTERNAL', message: 'boom', details: {} })
    expect(toControlError(new Error('boom'), 'FAILED')).toMatchObject({ code: 'FAILED' })
    expect(toControlError(Object.assign(new Error('odd'), { code: 'ERR_SOMETHING_NEW' }), 'FAILED')).toMatchObject({ code: 'FAILED', details: { driverCode: 'ERR_SOMETHING_NEW' } })
    expect(toControlError(Object.assign(new Error('enoent'), { code: 'ENOENT' }))).toMatchObject({ code: 'INTERNAL', details: {} })
    expect(toControlError('a string')).toMatchObject({ code: 'INTERNAL', message: 'a string' })
  })

  it('every code the table gives is one the control API uses', () => {
    const known = new Set(['NOT_FOUND', 'ALREADY_EXISTS', 'INVALID_ARGUMENT', 'NO_CAPACITY', 'WRONG_STATE', 'FAILED_PRECONDITION', 'UNAVAILABLE', 'TIMEOUT', 'MIGRATION_FAILED', 'ABORTED'])
    expect(Object.values(CODE_OF).filter((c) => !known.has(c))).toEqual([])
  })

  it('a resize the driver refuses reads as before, through the same table', () => {
    expect(driverRefusal(new WrongStateError('no hotplug'), 'web-1', true)).toMatchObject({ code: 'WRONG_STATE', message: 'cannot resize VM web-1: no hotplug; add --restart to resize it across a restart', details: { driverCode: 'ERR_WRONG_STATE' } })
    expect(driverRefusal(new WrongStateError('no hotplug'), 'web-1', false)).toMatchObject({ code: 'WRONG_STATE', message: 'cannot resize VM web-1: no hotplug' })
    expect(driverRefusal(new DiskFullError('full'), 'web-1', false)).toMatchObject({ code: 'NO_CAPACITY', details: { driverCode: 'ERR_DISK_FULL' } })
    expect(driverRefusal(new Error('odd'), 'web-1', false)).toMatchObject({ code: 'FAILED', details: {} })
    const own = new ControlError('WRONG_STATE', 'stopped')
    expect(driverRefusal(own, 'web-1', true)).toBe(own)
  })
})
