import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AgentProcess } from './agent-process.js'

/** Lines of each agent's output a failed test prints (CI keeps only its own log). */
const TAIL_LINES = 40

/**
 * What agents said, for a test that failed: every agent's whole output is written under
 * /tmp/mv-e2e-failures-LABEL-* and the tail of each is returned for the test's log.
 */
export async function keepAgentLogs (agents: readonly AgentProcess[], label: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `mv-e2e-failures-${label}-`))
  const tails: string[] = []
  for (const [i, agent] of agents.entries()) {
    const output = agent.output()
    await writeFile(join(dir, `agent-${i + 1}.log`), output)
    tails.push(`--- agent ${i + 1} (${agent.hostId}, pid ${agent.pid}), last ${TAIL_LINES} lines:\n${output.split('\n').slice(-TAIL_LINES).join('\n')}`)
  }
  return `agent logs kept in ${dir}\n${tails.join('\n')}`
}
