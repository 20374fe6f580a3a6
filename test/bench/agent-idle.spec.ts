/**
 * The idle bench measures the agent as the project's systemd unit runs it: the environment it
 * passes is read from the unit file, so the two cannot drift apart.
 */
import { describe, expect, it } from 'vitest'
import { unitEnvironment } from '../../bench/src/agent-idle.js'

describe('the idle bench takes its environment from the systemd unit', () => {
  it('reads the Environment= lines, without the config file the bench replaces with flags', () => {
    expect(unitEnvironment('[Service]\nEnvironment=MESHVIRT_CONFIG=/etc/meshvirt/agent.json\nEnvironment=MALLOC_ARENA_MAX=2\n# Environment=NOT_ME=1\nExecStart=/usr/bin/env meshvirt agent\n'))
      .toEqual({ MALLOC_ARENA_MAX: '2' })
    expect(unitEnvironment('[Service]\nExecStart=meshvirt agent\n')).toEqual({})
  })

  it('the unit the project ships limits malloc arenas', () => {
    expect(unitEnvironment()).toMatchObject({ MALLOC_ARENA_MAX: '2' })
  })
})
