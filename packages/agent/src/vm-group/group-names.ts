import { VM_NAME } from '../vm/vm-spec.js'
import { GroupInputError } from './errors.js'

/** A group's size bounds: members are `NAME-1…NAME-MAX_GROUP_COUNT`, so `-100` is the longest suffix. */
export const MAX_GROUP_COUNT = 100
/** A member's name is a VM name (at most 63 characters), so the group's name leaves room for `-100`. */
export const MAX_GROUP_NAME = 63 - `-${MAX_GROUP_COUNT}`.length

/** The member at `index` (1-based, stable for the member's life) of group `group`. */
export function memberName (group: string, index: number): string {
  return `${group}-${index}`
}

/** The index of `vm` in `group`, or undefined when the VM's name is not `group-N` with N ≥ 1. */
export function memberIndex (group: string, vm: string): number | undefined {
  if (!vm.startsWith(`${group}-`)) return undefined
  const tail = vm.slice(group.length + 1)
  if (!/^[1-9][0-9]*$/.test(tail)) return undefined
  return Number(tail)
}

/** Refuses a group name that would give members invalid VM names. */
export function checkGroupName (name: string): void {
  if (!VM_NAME.test(name) || name.length > MAX_GROUP_NAME) {
    throw new GroupInputError(`group name '${name}' must be 1–${MAX_GROUP_NAME} lowercase letters, digits or '-', starting and ending with a letter or digit (members are named '${name}-1', '${name}-2', …)`)
  }
}

/**
 * Refuses a count out of bounds. A new group has at least one member; a group may be scaled to 0
 * (it keeps its template and can be scaled out again).
 */
export function checkGroupCount (count: number, purpose: 'create' | 'scale'): void {
  const min = purpose === 'create' ? 1 : 0
  if (!Number.isInteger(count) || count < min || count > MAX_GROUP_COUNT) {
    throw new GroupInputError(`--count must be a whole number from ${min} to ${MAX_GROUP_COUNT}, got ${String(count)}`)
  }
}
