/**
 * The test kit's agent cluster leaves no process behind when one agent does not come up: the
 * caller gets an error, never the agents already started, so the kit stops them itself.
 */
import { readdir, readFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { meshvirt, startAgentCluster } from '@meshvirt/testkit'

/** Pids of live processes whose command line mentions `text`. */
async function processesMentioning (text: string): Promise<number[]> {
  const pids: number[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')
    if (cmdline.includes(text)) pids.push(Number(entry))
  }
  return pids
}

describe('startAgentCluster', () => {
  let dir: string
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'mv-kit-')) })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  it('stops the agents it started when a later one fails to start', async () => {
    const key = join(dir, 'cluster.key')
    expect((await meshvirt(['cluster', 'init', '--out', key])).exitCode).toBe(0)
    // host-2 is refused at start (an unknown flag): host-1 is up by then.
    await expect(startAgentCluster(dir, key, 2, (i) => i === 2 ? ['--no-such-flag'] : ['--hypervisor', 'sim', '--network', 'sim', '--monitor-listen', 'off']))
      .rejects.toThrow(/exited with 2 before ready/)
    expect(await processesMentioning(join(dir, 'host-1'))).toEqual([])
  }, 60_000)
})
