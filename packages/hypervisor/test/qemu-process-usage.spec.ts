import { describe, expect, it } from 'vitest'
import { QemuProcess } from '../src/qemu/qemu-process.js'

describe('QemuProcess.usage', () => {
  it('gives the process\'s own age, the denominator of its CPU time since launch', async () => {
    const u = await new QemuProcess(process.pid, '/nonexistent/qemu.pid').usage()
    expect(u).toBeDefined()
    // This test process's age, as Node itself counts it (to the clock tick).
    expect(Math.abs((u?.ageSeconds ?? -1) - process.uptime())).toBeLessThan(1)
    expect(u?.cpuSeconds).toBeLessThanOrEqual((u?.ageSeconds ?? 0) * 4)
    expect(await new QemuProcess(2 ** 22 + 7, '/nonexistent/qemu.pid').usage()).toBeUndefined()
  })
})
