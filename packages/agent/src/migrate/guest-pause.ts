/**
 * The pause the guest saw: the source's vCPUs stopping for the switchover (its QMP `STOP`) to the
 * destination's resuming them (QMP `RESUME`), epoch ms as the wire carries them. Unlike QEMU's own
 * `downtime` (source side, up to `completed`) it includes the disk mirrors' completion and the
 * hand-over. The two stamps come from two hosts' clocks: undefined when one is missing or they
 * run backwards (clock skew larger than the pause), rather than a made-up figure.
 */
export function guestPauseMs (stoppedAtMs: number | null | undefined, resumedAtMs: number | null | undefined): number | undefined {
  const stopped = Number(stoppedAtMs ?? 0)
  const resumed = Number(resumedAtMs ?? 0)
  if (stopped <= 0 || resumed <= 0 || resumed < stopped) return undefined
  return resumed - stopped
}
