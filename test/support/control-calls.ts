import { ControlClient, type RunningAgent } from '@meshvirt/agent'

/** One control request to an in-process agent, over its real control socket. */
export async function call (a: RunningAgent, req: object): Promise<Awaited<ReturnType<ControlClient['call']>>> {
  return await new ControlClient(a.controlSocket).call(req, { timeoutMs: 60_000 })
}

/** The refusal a call must end in: its code and message (the call succeeding fails the test). */
export async function failure (p: Promise<unknown>): Promise<{ code: string, message: string }> {
  try {
    await p
  } catch (err) {
    return { code: (err as { code?: string }).code ?? '', message: (err as Error).message }
  }
  throw new Error('expected the call to be refused')
}
