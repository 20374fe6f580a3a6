import { ANNOUNCE_INITIAL_MS, ANNOUNCE_MAX_MS, ANNOUNCE_ROUNDS, ANNOUNCE_STEP_MS } from '../constants.js'
import type { QmpClient } from '../qemu/qmp-client.js'

/**
 * After the guest resumed on the destination: QEMU sends gratuitous RARPs from every NIC (and asks
 * a virtio-net guest that supports it to send its own ARPs), so bridges and VXLAN learning move the
 * MACs here at once instead of when the guest next talks. QEMU 7.2 also announces on its own when
 * the stream has loaded; measured on one bridge, those frames leave only at `cont` (the MAC stays on
 * the source's port while both ends are paused) and move it ~40 ms after the resume with or without
 * this call. This round is ours to time: it starts after `cont`, whatever the QEMU version does, and
 * repeats for ~1.5 s (initial, then + step up to max), covering forwarding entries that land late.
 */
export async function announceSelf (qmp: QmpClient, signal?: AbortSignal): Promise<void> {
  await qmp.execute('announce-self', {
    initial: ANNOUNCE_INITIAL_MS, max: ANNOUNCE_MAX_MS, rounds: ANNOUNCE_ROUNDS, step: ANNOUNCE_STEP_MS
  }, { signal })
}
