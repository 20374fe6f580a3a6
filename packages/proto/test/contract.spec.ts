import { fileURLToPath } from 'node:url'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import protobuf from 'protobufjs'
import { describe, expect, it } from 'vitest'
import { pb } from '../src/index.js'

// Reflect the .proto sources (full protobufjs) and round-trip a fully populated sample of every
// message through the *static* generated code, so a message added to proto/ is covered at once.
const protoDir = fileURLToPath(new URL('../../../proto/', import.meta.url))
const root = protobuf.loadSync(readdirSync(protoDir).filter((f) => f.endsWith('.proto')).map((f) => join(protoDir, f)))
root.resolveAll()

const BIG = 2 ** 40 + 7 // above 2^32: must survive as a plain number

function allMessages (ns: protobuf.NamespaceBase): protobuf.Type[] {
  const out: protobuf.Type[] = []
  for (const nested of ns.nestedArray) {
    if (nested instanceof protobuf.Type) out.push(nested)
    if (nested instanceof protobuf.Namespace || nested instanceof protobuf.Type) out.push(...allMessages(nested))
  }
  return out
}

function scalar (type: string, salt: number): unknown {
  switch (type) {
    case 'string': return `s${salt}`
    case 'bool': return true
    case 'double': case 'float': return 0.5 + salt
    case 'uint64': case 'fixed64': case 'int64': case 'sint64': case 'sfixed64': return BIG + salt
    case 'bytes': return Uint8Array.from([1, 2, salt & 0xff])
    default: return 3 + salt
  }
}

function sample (type: protobuf.Type, depth = 0): Record<string, unknown> {
  const obj: Record<string, unknown> = {}
  const oneofSeen = new Set<string>()
  for (const field of type.fieldsArray) {
    if (field.partOf !== null && field.partOf !== undefined) {
      if (oneofSeen.has(field.partOf.name)) continue
      oneofSeen.add(field.partOf.name)
    }
    const value = (): unknown => {
      const rt = field.resolvedType
      if (rt instanceof protobuf.Enum) return Math.max(...Object.values(rt.values))
      if (rt instanceof protobuf.Type) return depth < 3 ? sample(rt, depth + 1) : {}
      return scalar(field.type, field.id)
    }
    if (field.map) obj[field.name] = { k1: value(), k2: value() }
    else if (field.repeated) obj[field.name] = [value(), value()]
    else obj[field.name] = value()
  }
  return obj
}

type StaticClass = {
  fromObject: (o: Record<string, unknown>) => unknown
  encode: (m: unknown) => { finish: () => Uint8Array }
  decode: (b: Uint8Array) => unknown
  toObject: (m: unknown, o?: object) => Record<string, unknown>
}

function staticClass (type: protobuf.Type): StaticClass {
  const path = type.fullName.replace(/^\.meshvirt\.v1\./, '').split('.')
  let cur: unknown = pb
  for (const part of path) cur = (cur as Record<string, unknown>)[part]
  return cur as StaticClass
}

const messages = allMessages(root.lookup('meshvirt.v1') as protobuf.Namespace)

describe('wire contract', () => {
  it('has static code for every message in proto/', () => {
    expect(messages.length).toBeGreaterThan(30)
    const missing = messages.filter((t) => typeof staticClass(t)?.encode !== 'function').map((t) => t.fullName)
    expect(missing).toEqual([])
  })

  it.each(messages.map((t) => [t.fullName, t] as const))('round-trips %s', (_name, type) => {
    const cls = staticClass(type)
    const original = cls.fromObject(sample(type))
    const decoded = cls.decode(cls.encode(original).finish())
    // bytes compared as base64: the reader hands back Buffers, the sample holds Uint8Arrays.
    const opts = { defaults: false, arrays: true, objects: true, bytes: String }
    expect(cls.toObject(decoded, opts)).toEqual(cls.toObject(original, opts))
  })

  it('decodes uint64 above 2^32 to plain numbers', () => {
    const bytes = pb.HostAdvert.encode({ hostId: 'h', incarnation: BIG, seq: 2 ** 52 + 1, capacity: { total: { memoryBytes: 3 * 2 ** 40 } } }).finish()
    const advert = pb.HostAdvert.decode(bytes)
    expect(advert.incarnation).toBe(BIG)
    expect(typeof advert.seq).toBe('number')
    expect(advert.seq).toBe(2 ** 52 + 1)
    expect(advert.capacity?.total?.memoryBytes).toBe(3 * 2 ** 40)
  })

  it('decodes absent uint64 fields to the number 0, never a Long', () => {
    const summary = pb.VmSummary.decode(pb.VmSummary.encode({ id: 'x' }).finish())
    expect(summary.epoch).toBe(0)
    const advert = pb.HostAdvert.decode(pb.HostAdvert.encode({ hostId: 'h' }).finish())
    expect(advert.incarnation).toBe(0)
    expect(advert.seq).toBe(0)
  })

  it('refuses truncated bytes with an error instead of returning garbage', () => {
    const bytes = pb.VmSpec.encode({ name: 'web-1', resources: { vcpus: 2, memoryBytes: BIG } }).finish()
    expect(() => pb.VmSpec.decode(bytes.subarray(0, bytes.length - 3))).toThrow()
  })
})
