/** Defaults of the hypervisor drivers, resolved once by whoever constructs a driver. */

/**
 * Pinned machine type. The `pc` alias moves with the QEMU version, and a guest can only migrate
 * between two QEMUs that emulate the very same machine (docs/design.md, "What QEMU 7.2 taught us").
 */
export const MACHINE_TYPE = 'pc-i440fx-7.2'

/** A CPU model every x86 QEMU offers under both KVM and TCG, so guests stay migratable. */
export const DEFAULT_CPU_MODEL = 'qemu64'

/** Graceful stop: how long the guest gets to honour the ACPI power button before SIGTERM. */
export const ACPI_TIMEOUT_MS = 30_000
/** The power button is pressed again this often during the ACPI wait (a booting guest drops a press). */
export const POWER_BUTTON_REPEAT_MS = 3_000
/** Then how long QEMU gets to exit on SIGTERM before SIGKILL. */
export const SIGTERM_TIMEOUT_MS = 5_000
/** After SIGKILL, how long before we report the process as unkillable. */
export const SIGKILL_TIMEOUT_MS = 5_000
/** Default timeout of one QMP command. */
export const QMP_COMMAND_TIMEOUT_MS = 10_000
/** How long `start()` waits for the daemonized QEMU to write its pid file and answer QMP. */
export const LAUNCH_TIMEOUT_MS = 15_000
/** Poll period when waiting for a process that is not our child to exit. */
export const EXIT_POLL_MS = 20

/** Linux caps a unix socket path at 108 bytes including the NUL. */
export const MAX_SOCKET_PATH = 107

/**
 * Memory a QEMU process holds beyond its guest's RAM (TCG code buffer, device models, libs): the
 * agent reserves this much per guest so a host packed to its memory ratio is not pushed into
 * swap. Measured here (QEMU 7.2, TCG, 1 vCPU, the test guest booted): 137 MiB of RSS outside
 * the guest-RAM mapping, for 128 and 256 MiB guests alike (/proc/PID/smaps). KVM has no TCG
 * code buffer and should need less, but could not be measured on these machines: the same
 * figure is reserved, rounded up.
 */
export const QEMU_GUEST_OVERHEAD_MIB = 144

/**
 * Memory hotplug (`vm resize --memory` of a running VM): a guest launched with room to grow
 * (VmSpec.maxMemoryMiB) takes at most MEMORY_SLOTS DIMMs, each a whole number of Linux's 128 MiB
 * memory blocks (a guest kernel adds only whole blocks).
 */
export const MEMORY_SLOTS = 16
export const DIMM_STEP_MIB = 128

/** vCPU hotplug: a guest's room for vCPUs online (VmSpec.maxVcpus) is at most this many. */
export const MAX_HOTPLUG_VCPUS = 64

/** Smallest guest we accept; the test guest itself needs ≥ 96 MiB. */
export const MIN_MEMORY_MIB = 16

/**
 * NICs per VM: all share PCI slot 2 as functions 0…N-1 (a slot has 8 functions), so disks keep
 * their slots whatever the NICs; four is what a VM on a few networks needs.
 */
export const MAX_NICS = 4
/** Linux caps interface names at 15 characters (IFNAMSIZ − 1). */
export const MAX_IFNAME = 15
/** QMP `announce-self` after an incoming migration: gratuitous RARPs so switches learn where the MACs went. */
export const ANNOUNCE_INITIAL_MS = 50
export const ANNOUNCE_MAX_MS = 550
export const ANNOUNCE_ROUNDS = 5
export const ANNOUNCE_STEP_MS = 100
