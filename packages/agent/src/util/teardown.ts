/**
 * What has been started, to be stopped in reverse. The agent adds each part's stop as the part
 * comes up; a start-up that fails half-way runs it to undo exactly what it had done, and a normal
 * stop runs the same list — one order for both, so nothing is left running or stopped twice.
 */
export class Teardown {
  private readonly steps: Array<{ name: string, run: () => unknown }> = []
  private running: Promise<TeardownFailure[]> | undefined

  /** Registers how to undo what was just started; runs after everything registered later. */
  add (name: string, run: () => unknown): void {
    if (this.running !== undefined) throw new Error(`teardown already ran: ${name} was started after its stop`)
    this.steps.push({ name, run })
  }

  /**
   * Runs every step, last added first. A step that throws does not stop the others; its failure is
   * returned (the caller logs it). Idempotent: a second call waits for the first.
   */
  async run (): Promise<TeardownFailure[]> {
    this.running ??= (async () => {
      const failures: TeardownFailure[] = []
      for (const step of [...this.steps].reverse()) {
        try {
          await step.run()
        } catch (err) {
          failures.push({ name: step.name, error: err instanceof Error ? err : new Error(String(err)) })
        }
      }
      return failures
    })()
    return await this.running
  }
}

export interface TeardownFailure { name: string, error: Error }
