import { describe, expect, it } from 'vitest'
import { AgentEvents } from '../src/util/agent-events.js'

describe('AgentEvents', () => {
  it('delivers to every listener in order, typed per event; unsubscribe stops one', () => {
    const events = new AgentEvents()
    const seen: string[] = []
    events.on('vm:committed', ({ vmId }) => { seen.push(`a:${vmId}`) })
    const off = events.on('vm:committed', ({ vmId }) => { seen.push(`b:${vmId}`) })
    events.on('ledger:changed', () => { seen.push('ledger') })
    events.emit('vm:committed', { vmId: 'vm-1' })
    off()
    events.emit('vm:committed', { vmId: 'vm-2' })
    events.emit('ledger:changed', {})
    expect(seen).toEqual(['a:vm-1', 'b:vm-1', 'a:vm-2', 'ledger'])
    expect(events.count('vm:committed')).toBe(1)
  })

  it('a listener that throws is reported and does not stop the others or the emitter', () => {
    const failures: string[] = []
    const events = new AgentEvents((event, err) => { failures.push(`${event}: ${(err as Error).message}`) })
    let after = 0
    events.on('vm:changed', () => { throw new Error('advert gone') })
    events.on('vm:changed', () => { after++ })
    expect(() => { events.emit('vm:changed', {}) }).not.toThrow()
    expect(after).toBe(1)
    expect(failures).toEqual(['vm:changed: advert gone'])
  })

  it('a listener that unsubscribes while the event is delivered does not make another miss it', () => {
    const events = new AgentEvents()
    const seen: number[] = []
    const off = events.on('vm:changed', () => { seen.push(1); off() })
    events.on('vm:changed', () => { seen.push(2) })
    events.emit('vm:changed', {})
    events.emit('vm:changed', {})
    expect(seen).toEqual([1, 2, 2])
  })
})
