import { TIMING_PRESETS, type MeshTiming, type TimingPreset } from '@meshvirt/mesh'

/**
 * Ledger changes come in bursts (a placement storm changes it hundreds of times a second). An
 * isolated change is still published at once; a burst is coalesced to one advert per this
 * window, since brokers learn exact capacity from every Refused anyway (adverts are hints).
 * Measured: at 50 ms, verifying peers' advert signatures was the largest CPU cost of a storm.
 */
export const ADVERT_COALESCE_MS = 250
/**
 * Through a burst the window doubles up to this (AdvertPublisher). Measured with 10 agent
 * processes placing 400 VMs at once: a fixed 250 ms window cost 46 ms of CPU per placement,
 * 1 s 34 ms, 3 s 29 ms — each advert is received ~5 times by every host (gossipsub D = 4 plus
 * the flood), so adverts were the largest cost of a storm.
 */
export const ADVERT_COALESCE_MAX_MS = 2000

/** The mesh's timing: a preset (tests: 'local'), or the LAN one with the configured heartbeat. */
export function meshTiming (preset: TimingPreset | undefined, heartbeatMs: number): Partial<MeshTiming> {
  const base = preset === undefined ? { ...TIMING_PRESETS.lan, heartbeatIntervalMs: heartbeatMs } : { ...TIMING_PRESETS[preset] }
  return {
    ...base,
    publishDebounceMs: Math.max(base.publishDebounceMs, ADVERT_COALESCE_MS),
    publishDebounceMaxMs: Math.max(base.publishDebounceMaxMs, ADVERT_COALESCE_MAX_MS)
  }
}

/** MESHVIRT_TIMING=lan|wan|local, if set. */
export function timingFromEnv (): TimingPreset | undefined {
  const t = process.env.MESHVIRT_TIMING
  return t === 'lan' || t === 'wan' || t === 'local' ? t : undefined
}
