import { describe, expect, it } from 'vitest'
import { DETACH_BYTE, plainLines, splitInput } from '../src/commands/vm-console-attach.js'

const bytes = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'latin1'))
const text = (b: Uint8Array): string => Buffer.from(b).toString('latin1')

describe('vm console input', () => {
  it.each<[string, boolean, string, boolean]>([
    ['ls\n', false, 'ls\r', false],
    ['ls\n', true, 'ls\n', false],
    ['ls\r', true, 'ls\r', false],
    [`ab${String.fromCharCode(DETACH_BYTE)}cd`, true, 'ab', true],
    [`${String.fromCharCode(DETACH_BYTE)}`, false, '', true],
    ['\x03', true, '\x03', false]
  ])('%j (terminal %s) sends %j, detach %s', (input, terminal, send, detach) => {
    const r = splitInput(bytes(input), terminal)
    expect(text(r.send)).toBe(send)
    expect(r.detach).toBe(detach)
  })
})

describe('vm console output for a reader that is not a terminal', () => {
  it.each<[string, string, string, string]>([
    ['', 'a\r\nb\r\n', 'a\nb\n', ''],
    ['', 'a\r', 'a', '\r'],
    ['\r', '\nb', '\nb', ''],
    ['\r', 'x', '\rx', ''],
    ['', 'guest# \x1b[6n', 'guest# \x1b[6n', '']
  ])('carry %j + %j → %j (carry %j)', (carry, chunk, out, next) => {
    expect(plainLines(carry, chunk)).toEqual([out, next])
  })
})
