import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MESHVIRT_BIN, ensureGuest, killQemusUnder, meshvirt, meshvirtOn, startAgentCluster, type AgentProcess, type TestGuest } from '@meshvirt/testkit'

const OUTPUT = fileURLToPath(new URL('../../test-results/', import.meta.url))
/** Debian's chromium, as CI installs it (scripts/install-system-deps); no browser download. */
/** `meshvirt ARGV` with `input` on its stdin (not a terminal: lines in, output until it is quiet). */
async function meshvirtWithInput (args: string[], env: Record<string, string>, input: string): Promise<{ stdout: string, stderr: string, exitCode: number }> {
  return await new Promise((resolve) => {
    const child = execFile('node', [MESHVIRT_BIN, ...args], { env: { PATH: process.env.PATH, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ stdout, stderr, exitCode: err === null ? 0 : typeof err.code === 'number' ? err.code : -1 })
    })
    child.stdin?.end(input)
  })
}

const CHROMIUM = { executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'] }

/**
 * The console the API serves, in a real browser, over 3 real agents and a real QEMU guest: an
 * operator creates, watches, reads the serial console of, migrates and deletes a VM; a viewer sees
 * no action. The browser cannot pin the cluster CA as the CLI does: it is told to accept the
 * agent's certificate (an operator imports the CA, `meshvirt cluster ca`).
 */
describe('the management console in a real browser', () => {
  let dir: string
  let guest: TestGuest
  let agents: AgentProcess[] = []
  let browser: Browser | undefined
  const tokens: Record<string, string> = {}
  let url = ''

  beforeAll(async () => {
    guest = await ensureGuest()
    dir = await mkdtemp(join(tmpdir(), 'mv-console-'))
    await meshvirt(['cluster', 'init', '--out', join(dir, 'cluster.key')])
    agents = (await startAgentCluster(dir, join(dir, 'cluster.key'), 3, () => ['--image-dir', guest.dir, '--api-listen', '127.0.0.1:0'])).agents
    for (const [name, role] of [['ops', 'operator'], ['vera', 'viewer']] as const) {
      tokens[role] = (JSON.parse(await meshvirtOn(agents[0] as AgentProcess, ['user', 'add', name, '--role', role, '--json'])) as { token: string }).token
    }
    // The page of host-2: any agent serves it and answers for the whole cluster.
    url = (JSON.parse(await readFile(join((agents[1] as AgentProcess).dataDir, 'agent.json'), 'utf8')) as { apiUrl: string }).apiUrl
    browser = await chromium.launch({ ...CHROMIUM, timeout: 30_000 })
    await mkdir(OUTPUT, { recursive: true })
  }, 240_000)

  afterAll(async () => {
    await browser?.close()
    await Promise.all(agents.map(async (a) => { await a.stop() }))
    for (const a of agents) await killQemusUnder(a.dataDir)
    await rm(dir, { recursive: true, force: true })
  })

  const open = async (token: string): Promise<Page> => {
    const page = await (await (browser as Browser).newContext({ ignoreHTTPSErrors: true })).newPage()
    await page.goto(url)
    await page.fill('#token', token)
    await page.click('#login button')
    await page.waitForSelector('#main:not(.hidden)', { timeout: 15_000 })
    return page
  }

  it('an operator logs in, creates a VM, watches it run, reads its serial console, migrates it and deletes it', async () => {
    const page = await open(tokens.operator as string)
    expect(await page.textContent('#who')).toBe('logged in as ops (operator)')
    await expect.poll(async () => await page.locator('#hosts tr[data-host]').count(), { timeout: 15_000 }).toBe(3)

    await page.fill('#c-name', 'ui-1')
    await page.fill('#c-kernel', guest.kernel)
    await page.fill('#c-initrd', guest.initrd)
    await page.fill('#c-cmdline', guest.cmdline)
    await page.click('#create button')
    const row = '#vms tr[data-vm="ui-1"]'
    await page.waitForSelector(`${row}[data-state="running"]`, { timeout: 60_000 })
    const before = await page.getAttribute(row, 'data-owner')

    await page.click(`${row} button[data-action="console"]`)
    await expect.poll(async () => await page.textContent('#console'), { timeout: 90_000, interval: 1000 }).toMatch(/MESHVIRT-READY/)

    // Charts of the last hour: each host's CPU, memory, disk and network, and the VM's use.
    await expect.poll(async () => await page.locator('#charts [data-chart^="host:"] canvas').count(), { timeout: 30_000 }).toBe(6)
    await page.waitForSelector('#charts [data-chart="vm:ui-1"] canvas', { timeout: 60_000 })
    // Its disk and NIC rates once two readings of its QEMU exist (the owner samples every 15 s).
    await page.waitForSelector('#charts [data-chart="vm:ui-1"][data-io="true"] canvas', { timeout: 60_000 })

    // The terminal: keys typed in the page reach the guest's shell, its answer comes back.
    await page.click(`${row} button[data-action="attach"]`)
    await page.waitForSelector('body[data-console="open"]', { timeout: 15_000 })
    await page.keyboard.type('echo sum-$((6*7))\n')
    const screen = async (): Promise<string> => await page.evaluate(() => {
      const buffer = (globalThis as unknown as { meshvirtTerm: { buffer: { active: { length: number, getLine: (i: number) => { translateToString: (trim: boolean) => string } | undefined } } } }).meshvirtTerm.buffer.active
      const lines: string[] = []
      for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i)?.translateToString(true) ?? '')
      return lines.join('\n')
    })
    await expect.poll(screen, { timeout: 20_000, interval: 500 }).toMatch(/^sum-42$/m)
    await page.screenshot({ path: `${OUTPUT}api-console-terminal.png`, fullPage: true })

    const target = await page.$eval(`${row} select[data-migrate-to]`, (s) => s.querySelector('option')?.textContent ?? '')
    await page.click(`${row} button[data-action="migrate"]`)
    // While it moves the page says so; then the row shows its new host.
    await page.waitForSelector('#msg:has-text("Migrate ui-1…")', { timeout: 5_000 })
    await page.waitForSelector('#msg:has-text("migrated ui-1")', { timeout: 120_000 })
    // The migration panel: the source's progress while it ran, then how it ended.
    await page.waitForSelector('#migration[data-vm="ui-1"][data-phase="complete"]', { timeout: 10_000 })
    expect(await page.textContent('#migration-summary')).toMatch(/^done in \d+ ms, guest paused \d+ ms, \d+ MiB of RAM and \d+ MiB of disk moved$/)
    await expect.poll(async () => await page.getAttribute(row, 'data-owner'), { timeout: 15_000 }).toBe(target)
    expect(target).not.toBe(before)
    await page.waitForSelector('#events tr[data-kind="vm-migrated"]', { timeout: 15_000 })
    await page.screenshot({ path: `${OUTPUT}api-console-operator.png`, fullPage: true })

    await page.click(`${row} button[data-action="delete"]`)
    await page.waitForSelector(row, { state: 'detached', timeout: 30_000 })
    // The audit trail names the user, for changes only (the console's reads are not in it).
    await page.waitForSelector('#events tr[data-kind="api-request"]:has-text("ops (operator): deleteVm ui-1 → ok")', { timeout: 15_000 })
    expect(await page.locator('#events tr[data-kind="api-request"]:has-text("readConsole")').count()).toBe(0)
  }, 300_000)

  it('the CLI types into a guest\'s console through another agent\'s API (--endpoint, the WebSocket)', async () => {
    const host1 = agents[0] as AgentProcess
    await meshvirtOn(host1, ['vm', 'create', '--name', 'ui-3', '--memory', '128M', '--kernel', guest.kernel, '--initrd', guest.initrd, '--cmdline', guest.cmdline])
    await expect.poll(async () => await meshvirtOn(host1, ['vm', 'console', 'ui-3', '--log', '--all']), { timeout: 90_000, interval: 1000 }).toMatch(/guest# /)
    const viaHost3 = (JSON.parse(await readFile(join((agents[2] as AgentProcess).dataDir, 'agent.json'), 'utf8')) as { apiUrl: string }).apiUrl
    const typed = await meshvirtWithInput(['vm', 'console', 'ui-3', '--endpoint', viaHost3], { MESHVIRT_TOKEN: tokens.operator as string }, 'echo cli-$((3*5))\n')
    expect(typed.exitCode, typed.stderr).toBe(0)
    expect(typed.stdout).toMatch(/^cli-15$/m)
    // A viewer's token is refused before any byte reaches the guest.
    const refused = await meshvirtWithInput(['vm', 'console', 'ui-3', '--endpoint', viaHost3], { MESHVIRT_TOKEN: tokens.viewer as string }, 'reboot\n')
    expect(refused.exitCode).toBe(1)
    expect(refused.stderr).toContain('attachConsole needs the operator role')
    await meshvirtOn(host1, ['vm', 'delete', 'ui-3'])
  }, 180_000)

  it('a viewer sees the cluster and no action; the API refuses it what the page does not offer', async () => {
    await meshvirtOn(agents[0] as AgentProcess, ['vm', 'create', '--name', 'ui-2', '--memory', '128M', '--kernel', guest.kernel, '--initrd', guest.initrd, '--cmdline', guest.cmdline, '--no-wait'])
    const page = await open(tokens.viewer as string)
    expect(await page.textContent('#who')).toBe('logged in as vera (viewer)')
    await page.waitForSelector('#vms tr[data-vm="ui-2"]', { timeout: 15_000 })
    expect(await page.locator('button[data-action]').count()).toBe(0)
    expect(await page.isVisible('#create')).toBe(false)
    const refused = await page.evaluate(async () => {
      const token = (globalThis as unknown as { sessionStorage: { getItem: (k: string) => string | null } }).sessionStorage.getItem('meshvirt-token') ?? ''
      const res = await fetch('/v1/vms/ui-2/stop', { method: 'POST', headers: { authorization: `Bearer ${token}` } })
      return { status: res.status, body: await res.json() as { error: { message: string } } }
    })
    expect(refused.status).toBe(403)
    expect(refused.body.error.message).toContain('needs the operator role')
    await page.screenshot({ path: `${OUTPUT}api-console-viewer.png`, fullPage: true })
  }, 120_000)
})
