import { describe, expect, it } from 'vitest'
import { checkGroupCount, checkGroupName, MAX_GROUP_COUNT, memberIndex, memberName } from '../src/vm-group/group-names.js'
import { decideReconcile, type ObservedMember } from '../src/vm-group/reconcile-decision.js'

const present = (...indexes: number[]): ObservedMember[] => indexes.map(index => ({ index, state: 'present' }))
const lost = (...indexes: number[]): ObservedMember[] => indexes.map(index => ({ index, state: 'lost' }))
const deleting = (...indexes: number[]): ObservedMember[] => indexes.map(index => ({ index, state: 'deleting' }))

describe('decideReconcile: desired count vs observed members', () => {
  it.each([
    ['a new group of 4', 4, [], [1, 2, 3, 4], []],
    ['at its count: nothing to do', 4, present(1, 2, 3, 4), [], []],
    ['scaled 4 → 6: the next indexes', 6, present(1, 2, 3, 4), [5, 6], []],
    ['scaled 6 → 3: the newest go, highest first', 3, present(1, 2, 3, 4, 5, 6), [], [6, 5, 4]],
    ['scaled to 0: all go', 0, present(1, 2), [], [2, 1]],
    ['two members lost with their host: re-created as themselves', 4, [...present(1, 3), ...lost(2, 4)], [2, 4], []],
    ['lost member beyond a scale-in is not re-created', 2, [...present(1), ...lost(3)], [2], []],
    ['a gap is filled before new indexes', 3, present(1, 3), [2], []],
    ['a member being deleted keeps its index out of use', 3, [...present(1, 2), ...deleting(3)], [4], []],
    ['being deleted does not count toward the count', 2, [...present(1), ...deleting(2)], [3], []],
    ['scale-in while a member is lost: lost one not re-created', 2, [...present(1, 3, 4), ...lost(2)], [], [4]],
    ['duplicate observations count once', 2, [...present(1), ...present(1)], [2], []]
  ] as const)('%s', (_name, desired, observed, creates, deletes) => {
    const d = decideReconcile('web', desired, observed)
    expect(d.create.map(c => c.index)).toEqual(creates)
    expect(d.delete.map(c => c.index)).toEqual(deletes)
    for (const c of [...d.create, ...d.delete]) expect(c.name).toBe(`web-${c.index}`)
  })

  it('bounds one round\'s creates and takes the lowest indexes first', () => {
    expect(decideReconcile('web', 6, present(1), 2).create.map(c => c.index)).toEqual([2, 3])
    expect(decideReconcile('web', 6, present(1), 0).create).toEqual([])
  })

  it('converges: applying each decision reaches the count and keeps the lowest indexes', () => {
    let members = [1, 2, 3, 4]
    for (const desired of [6, 3, 5, 1, 4]) {
      const d = decideReconcile('web', desired, present(...members))
      members = [...members.filter(i => !d.delete.some(x => x.index === i)), ...d.create.map(c => c.index)].sort((a, b) => a - b)
      expect(members).toEqual(Array.from({ length: desired }, (_, i) => i + 1))
      expect(decideReconcile('web', desired, present(...members))).toEqual({ create: [], delete: [] })
    }
  })
})

describe('group names and counts', () => {
  it('names members NAME-index and reads the index back', () => {
    expect(memberName('web', 3)).toBe('web-3')
    expect(memberIndex('web', 'web-3')).toBe(3)
    expect(memberIndex('web', 'web-03')).toBeUndefined()
    expect(memberIndex('web', 'web-0')).toBeUndefined()
    expect(memberIndex('web', 'webx-1')).toBeUndefined()
    expect(memberIndex('web', 'web-a-1')).toBeUndefined()
  })

  it('refuses a name whose members would not be valid VM names', () => {
    expect(() => checkGroupName('web')).not.toThrow()
    for (const bad of ['', 'Web', '-web', 'web-', 'a'.repeat(60), 'web_1']) {
      expect(() => checkGroupName(bad)).toThrow(expect.objectContaining({ name: 'GroupInputError', code: 'GROUP_INPUT' }))
    }
    expect(() => checkGroupName('a'.repeat(59))).not.toThrow()
    expect(memberName('a'.repeat(59), MAX_GROUP_COUNT).length).toBe(63)
  })

  it('bounds the count: a new group ≥ 1, a scale ≥ 0, both ≤ the maximum, whole numbers only', () => {
    expect(() => checkGroupCount(1, 'create')).not.toThrow()
    expect(() => checkGroupCount(0, 'scale')).not.toThrow()
    expect(() => checkGroupCount(MAX_GROUP_COUNT, 'scale')).not.toThrow()
    for (const [n, purpose] of [[0, 'create'], [-1, 'scale'], [MAX_GROUP_COUNT + 1, 'create'], [2.5, 'scale'], [Number.NaN, 'create']] as const) {
      expect(() => checkGroupCount(n, purpose)).toThrow(/--count must be a whole number/)
    }
  })
})
