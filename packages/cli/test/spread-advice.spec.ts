import { describe, expect, it } from 'vitest'
import { spreadAdvice } from '../src/commands/spread-advice.js'

const host = (labels: Record<string, string>, liveness = 'alive'): { labels: Record<string, string>, liveness: string } => ({ labels, liveness })

describe('--spread-by advice', () => {
  const cluster = [host({ site: 'dc1', zone: 'a' }), host({ site: 'dc1', zone: 'a' }), host({ site: 'dc2' }), host({ site: 'dc3' }, 'dead')]

  it.each<[string, string, number, RegExp | undefined]>([
    ['enough live domains', 'site', 1, undefined],
    ['no spread asked', '', 2, undefined],
    ['no replicas', 'site', 0, undefined],
    ['a label no host has (a typo)', 'stie', 1, /no host has a 'stie' label, so no replica can be placed yet: label hosts with --label stie=VALUE/],
    ['fewer live domains than replicas + the owner\'s (the dead host does not count)', 'site', 2, /2 'site' domains; 2 replicas away from the owner's need 3: only 1 can be placed/],
    ['one domain: none can be placed', 'zone', 1, /1 'zone' domain; 1 replica away from the owner's need 2: none can be placed/]
  ])('%s', (_what, key, replicas, expected) => {
    const advice = spreadAdvice(cluster, key, replicas)
    if (expected === undefined) expect(advice).toBeUndefined()
    else expect(advice).toMatch(expected)
  })
})
