import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { meshvirt, meshvirtOn, type AgentProcess } from '@meshvirt/testkit'
import { startSimAgents, type SimAgents } from '../support/sim-agents.js'

const OUTPUT = fileURLToPath(new URL('../../test-results/', import.meta.url))
/** Debian's chromium, as CI installs it (scripts/install-system-deps); no browser download. */
const CHROMIUM = { executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'] }

/** The dashboard of a real agent (simulated hypervisor), in a real browser, driven by the real CLI. */
describe('the dashboard in a real browser', () => {
  let cluster: SimAgents
  let browser: Browser | undefined
  const on = (i: number): AgentProcess => cluster.agents[i] as AgentProcess

  beforeAll(async () => {
    cluster = await startSimAgents(3, (i) => i === 3 ? ['--label', 'zone=b'] : [])
  }, 90_000)
  afterAll(async () => {
    await browser?.close()
    await cluster?.stop()
  })

  it('shows all 3 hosts and the VM, and the VM\'s state changes live when it is stopped through the CLI', async () => {
    const kernel = join(cluster.dir, 'vmlinuz') // the simulated hypervisor boots nothing; the CLI wants a file
    await writeFile(kernel, 'not a kernel\n')
    await meshvirtOn(on(0), ['vm', 'create', '--name', 'dash-vm', '--memory', '256M', '--kernel', kernel])
    const id = (JSON.parse(await meshvirtOn(on(0), ['vm', 'show', 'dash-vm', '--json'])) as { id: string }).id
    const monitor = await cluster.monitorOf(on(1))

    browser = await chromium.launch({ ...CHROMIUM, timeout: 30_000 })
    const page = await browser.newPage()
    // Opening /?token= once trades the token for a cookie and drops it from the address.
    await page.goto(`${monitor.url}/?token=${monitor.token}`)
    expect(new URL(page.url()).search).toBe('')

    await expect.poll(async () => await page.locator('#hosts tr[data-host]').count(), { timeout: 15_000 }).toBe(3)
    const hostnames = await page.$$eval('#hosts tr[data-host] td:first-child', (tds) => tds.map((td) => td.textContent ?? ''))
    expect(hostnames).toEqual(['host-1', 'host-2 (this agent)', 'host-3'])
    const row = `#vms tr[data-vm="${id}"]`
    await page.waitForSelector(`${row}[data-state="running"]`, { timeout: 15_000 })
    expect(await page.textContent(`${row} td[data-owner]`)).toMatch(/^host-[123]$/)
    // The owner's memory bar counts the VM's 256 MiB.
    const bars = await page.$$eval('#hosts tr[data-host] td:nth-child(4) .bar span', (s) => s.map((x) => x.textContent ?? ''))
    expect(bars.filter((b) => b.startsWith('256.0 MiB /')), bars.join(' | ')).toHaveLength(1)

    // Stop it through the CLI against another host's agent; the page must follow without a reload.
    const stopped = await meshvirt(['vm', 'stop', 'dash-vm', '--data-dir', on(2).dataDir])
    expect(stopped.exitCode, stopped.stderr).toBe(0)
    expect(stopped.stdout.trim()).toBe('dash-vm is stopped')
    await page.waitForSelector(`${row}[data-state="stopped"]`, { timeout: 15_000 })
    await page.waitForSelector('#events tr[data-kind="vm-stopped"]', { timeout: 15_000 })
    expect(await page.textContent('#status')).toMatch(/^live/)

    await mkdir(OUTPUT, { recursive: true })
    await page.screenshot({ path: `${OUTPUT}monitoring-dashboard.png`, fullPage: true })
  })
})
