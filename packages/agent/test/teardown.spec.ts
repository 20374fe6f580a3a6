import { describe, expect, it } from 'vitest'
import { Teardown } from '../src/util/teardown.js'

describe('Teardown', () => {
  it('runs the steps last-added first, also past a step that fails, and reports the failure', async () => {
    const ran: string[] = []
    const t = new Teardown()
    t.add('store', () => { ran.push('store') })
    t.add('mesh', async () => { await Promise.resolve(); ran.push('mesh') })
    t.add('monitor', () => { ran.push('monitor'); throw new Error('port gone') })
    t.add('socket', () => { ran.push('socket') })
    const failures = await t.run()
    expect(ran).toEqual(['socket', 'monitor', 'mesh', 'store'])
    expect(failures.map((f) => `${f.name}: ${f.error.message}`)).toEqual(['monitor: port gone'])
  })

  it('runs once: a second call (a stop during a stop) waits for the first', async () => {
    let n = 0
    const t = new Teardown()
    t.add('slow', async () => { n++; await new Promise((resolve) => setTimeout(resolve, 20)) })
    await Promise.all([t.run(), t.run()])
    await t.run()
    expect(n).toBe(1)
  })

  it('refuses a step added after it ran: that part would never be stopped', async () => {
    const t = new Teardown()
    await t.run()
    expect(() => { t.add('late', () => {}) }).toThrow(/teardown already ran: late/)
  })
})
