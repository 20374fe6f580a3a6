import { mkdir } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser } from 'playwright-core'
import { afterEach, describe, expect, it } from 'vitest'
import { simVmSpec } from '@meshvirt/agent'
import { vmStop } from '../../packages/cli/src/commands/vm.js'
import { runCommand, startMonitoredCluster, type MonitoredCluster } from '../support/monitored-cluster.js'

const OUTPUT = fileURLToPath(new URL('../../test-results/', import.meta.url))
const HOST = { vcpus: 4, memoryMiB: 1024 }
/** Debian's chromium, as CI installs it (scripts/install-system-deps); no browser download. */
const CHROMIUM = { executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'] }

describe('the dashboard in a real browser', () => {
  let cluster: MonitoredCluster | undefined
  let browser: Browser | undefined
  afterEach(async () => {
    await browser?.close()
    browser = undefined
    await cluster?.stop()
    cluster = undefined
  })

  it('shows all 3 hosts and the VM, and the VM\'s state changes live when it is stopped through the CLI', async () => {
    cluster = await startMonitoredCluster([HOST, HOST, { ...HOST, labels: { zone: 'b' } }])
    const { vm } = await cluster.sim.agents[0]!.broker.create(simVmSpec('dash-vm', 256), 'dash-key')
    const id = vm.summary?.id as string
    const monitor = cluster.monitors[1]!

    browser = await chromium.launch({ ...CHROMIUM, timeout: 30_000 })
    const page = await browser.newPage()
    // Opening /?token= once trades the token for a cookie and drops it from the address.
    await page.goto(`${monitor.url as string}/?token=${monitor.token as string}`)
    expect(new URL(page.url()).search).toBe('')

    await expect.poll(async () => await page.locator('#hosts tr[data-host]').count(), { timeout: 15_000 }).toBe(3)
    const hostnames = await page.$$eval('#hosts tr[data-host] td:first-child', (tds) => tds.map((td) => td.textContent ?? ''))
    expect(hostnames).toEqual(['h0', 'h1 (this agent)', 'h2'])
    const row = `#vms tr[data-vm="${id}"]`
    await page.waitForSelector(`${row}[data-state="running"]`, { timeout: 15_000 })
    expect(await page.textContent(`${row} td[data-owner]`)).toMatch(/^h[012]$/)
    // The owner's memory bar counts the VM's 256 MiB.
    const bars = await page.$$eval('#hosts tr[data-host] td:nth-child(4) .bar span', (s) => s.map((x) => x.textContent ?? ''))
    expect(bars.filter((b) => b.startsWith('256.0 MiB /'))).toHaveLength(1)

    // Stop it through the CLI against another host's agent; the page must follow without a reload.
    const stopped = await runCommand(vmStop, ['dash-vm', '--data-dir', cluster.controlDirs[2] as string])
    expect(stopped).toMatchObject({ code: 0, out: ['dash-vm is stopped'] })
    await page.waitForSelector(`${row}[data-state="stopped"]`, { timeout: 15_000 })
    await page.waitForSelector('#events tr[data-kind="vm-stopped"]', { timeout: 15_000 })
    expect(await page.textContent('#status')).toMatch(/^live/)

    await mkdir(OUTPUT, { recursive: true })
    await page.screenshot({ path: `${OUTPUT}monitoring-dashboard.png`, fullPage: true })
  })
})
