import { describe, expect, it } from 'vitest'
import { Features, type AgentFeature } from '../src/parts/feature.js'
import type { SpecClaims } from '../src/negotiate/spec-claims.js'
import type { VmResource } from '../src/vm/vm-preparation.js'
import { vmSpecFromWire, type VmSpec } from '../src/vm/vm-spec-codec.js'

const resource = (name: string): VmResource => ({ name, prepare: async (_vm, driver) => driver, release: async () => {} })

/** A feature claiming `tag` for every VM, recording what it was asked; `fails` refuses at assign. */
function claiming (tag: string, log: string[], fails = false): SpecClaims<string> {
  return {
    assign: async (spec: VmSpec, vmId: string) => {
      if (fails) throw new Error(`${tag} refused`)
      log.push(`assign ${tag} ${vmId}`)
      return { spec: { ...spec, name: `${spec.name ?? ''}+${tag}` }, held: `${tag}:${vmId}` }
    },
    bind: async (held: string) => { log.push(`bind ${held}`) },
    release: async (held: string) => { log.push(`release ${held}`) }
  }
}

describe('Features: the registered features seen by the core as one', () => {
  it('per-VM resources in registration order; advert fields, handlers and key users merged', () => {
    const a: AgentFeature = { name: 'a', vmResources: [resource('a1'), resource('a2')], advert: () => ({ underlay: '10.0.0.1' }), keyUser: (k) => k === 'ip:x' ? 'vm-1' : undefined, handlers: () => ({ one: async () => ({}) }) }
    const b: AgentFeature = { name: 'b', vmResources: [resource('b1')], advert: () => ({ hostname: 'h' }), keyUser: () => 'vm-2', handlers: () => ({ two: async () => ({}) }) }
    const features = new Features([a, b, { name: 'bare' }])
    expect(features.vmResources().map((r) => r.name)).toEqual(['a1', 'a2', 'b1'])
    expect(features.advert()).toEqual({ underlay: '10.0.0.1', hostname: 'h' })
    expect(features.keyUser('ip:x')).toBe('vm-1')
    expect(features.keyUser('ip:y')).toBe('vm-2')
    expect(new Features([{ name: 'none' }]).keyUser('ip:x')).toBeUndefined()
    expect(Object.keys(features.handlers()).sort()).toEqual(['one', 'two'])
  })

  it('claims: each feature completes the spec in turn, and all are bound or released together', async () => {
    const log: string[] = []
    const claims = new Features([{ name: 'a', specClaims: () => claiming('a', log) }, { name: 'b', specClaims: () => claiming('b', log) }, { name: 'none' }]).specClaims()
    const { spec, held } = await claims.assign(vmSpecFromWire({ name: 'web' }), 'vm-1', 'k')
    expect(spec.name).toBe('web+a+b')
    await claims.bind(held)
    await claims.release(held)
    expect(log).toEqual(['assign a vm-1', 'assign b vm-1', 'bind a:vm-1', 'bind b:vm-1', 'release a:vm-1', 'release b:vm-1'])
  })

  it('claims: a feature that has its claims only later (after attach) is asked at each create', async () => {
    const log: string[] = []
    const late: { claims?: SpecClaims<string> } = {}
    const claims = new Features([{ name: 'late', specClaims: () => late.claims }]).specClaims()
    expect((await claims.assign(vmSpecFromWire({ name: 'web' }), 'vm-0', 'k')).spec.name).toBe('web')
    late.claims = claiming('late', log)
    expect((await claims.assign(vmSpecFromWire({ name: 'web' }), 'vm-1', 'k')).spec.name).toBe('web+late')
    expect(log).toEqual(['assign late vm-1'])
  })

  it('claims: one refusing gives back what the features before it took, and the error stands', async () => {
    const log: string[] = []
    const claims = new Features([{ name: 'a', specClaims: () => claiming('a', log) }, { name: 'b', specClaims: () => claiming('b', log, true) }]).specClaims()
    await expect(claims.assign(vmSpecFromWire({ name: 'web' }), 'vm-1', 'k')).rejects.toThrow('b refused')
    expect(log).toEqual(['assign a vm-1', 'release a:vm-1'])
  })

  it('deletions reach every feature', async () => {
    const seen: string[] = []
    const f = (name: string): AgentFeature => ({ name, vmDeleted: async (vm) => { seen.push(`${name} deleted ${vm.id}`) }, vmForceDeleted: async (id) => { seen.push(`${name} forced ${id}`) } })
    const features = new Features([f('a'), f('b')])
    await features.vmDeleted({ id: 'vm-1' } as Parameters<Features['vmDeleted']>[0])
    await features.vmForceDeleted('vm-2')
    expect(seen).toEqual(['a deleted vm-1', 'b deleted vm-1', 'a forced vm-2', 'b forced vm-2'])
  })
})
