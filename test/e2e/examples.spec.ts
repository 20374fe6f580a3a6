import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureGuest, killQemusUnder, REPO, type TestGuest, agentProcess, MESHVIRT_BIN, type AgentProcess, pollUntil } from '@meshvirt/testkit'
import { allExamples, type Example } from '../support/examples.js'

/**
 * Every `--help` and README example, run as written on a demo-shaped cluster (3 agent processes
 * started by the examples themselves, real QEMU guests under TCG), in the order an operator
 * would type them. Only what cannot be the same on one test machine is substituted (SUBSTITUTIONS
 * says what and why); the few examples that are not run say why in NOT_RUN.
 */

const README = fileURLToPath(new URL('../../README.md', import.meta.url))
/** One example's bound; a create waits for its guest to run, a migration for its switchover. */
const EXAMPLE_TIMEOUT_MS = 240_000
/** `--follow` runs until Ctrl-C: it passes if it prints without failing for this long. */
const FOLLOW_MS = 6_000

/** What is replaced in an example before it runs, and why. */
const SUBSTITUTIONS = [
  '/etc/meshvirt/, /var/lib/meshvirt, /srv/mv2 → directories under the test\'s temp dir (system paths on a test machine)',
  '--listen/-l /ip4/0.0.0.0/tcp/N and an agent without --listen → /ip4/127.0.0.1/tcp/0 (loopback only; the OS picks the port)',
  '--bootstrap /ip4/10.0.0.1/…/p2p/12D3KooW… → the first agent\'s real address',
  '--api-listen 0.0.0.0:N → 127.0.0.1:0; https://10.0.0.1:7443 → host-1\'s API; mvt1.… → the token `user add` printed',
  'the README\'s elided agent flags (…) → the first agent\'s flags, its own data dir',
  'agents get --name host-N (one machine has one hostname) and --image-dir <test guest dir> (kernels must come from an image dir)',
  '--image FILE → --kernel/--initrd/--cmdline of the test guest (it has no bootable disk image); --image NAME (a library image) stays, the test guest\'s kernel boots it',
  'image import FILE → a small empty qcow2 of that file name, made by the test in an image dir every agent has',
  '--ssh-key FILE, --user-data FILE → a public key and a #cloud-config the test writes (the operator\'s own files)',
  'vm resize: --memory NG → 256M, --disk NG → 2048M (the VMs here are 128M with a 1G disk: a resize grows them)',
  '--memory 2G/4G → 128M: two shared cores cannot migrate a multi-GiB TCG guest within QMP\'s bounds (measured here: the README\'s 2G web-1 failed twice, "QMP query-migrate got no answer within 10000 ms", load 15–22)',
  '--disk 50G → 1G: the three hosts share this machine\'s one filesystem, so every host\'s free disk is the same few GiB less what the others reserved (CI: "most free 4.4 GiB"); db-1 could not move anywhere',
  'vm-3f2a9c0d1e4b5a67 → web-1\'s real id',
  '.cache/guest/ → the test guest\'s dir relative to the repository, where it is elsewhere (MESHVIRT_GUEST_DIR)'
]

/** Examples not run, and why (matched against the line as written). */
const NOT_RUN: Array<[RegExp, string]> = [
  [/^scp /, 'copies the key to another machine; the hosts here share one file'],
  [/^meshvirt (vm|group) create .*--net /, 'a NIC needs each host in its own network namespace (one bridge per network per host); test/e2e/vm-network.spec.ts and scripts/demo-network run it there']
]

interface Run { code: number | null, stdout: string, stderr: string, timedOut: boolean }

describe('every --help and README example runs as written on a demo-shaped cluster', () => {
  let dir: string
  let guest: TestGuest
  let env: Record<string, string>
  const agents: AgentProcess[] = []
  const background: ChildProcess[] = []
  const examples = dedupe(allExamples(README))
  let firstAgentFlags = ''
  let bootstrapAddr = ''
  let webId = ''
  let apiUrl = ''
  let userToken = ''

  beforeAll(async () => {
    guest = await ensureGuest()
    dir = await mkdtemp(join(tmpdir(), 'mv-ex-'))
    await mkdir(join(dir, 'etc', 'meshvirt'), { recursive: true })
    await mkdir(join(dir, 'bin'))
    // `meshvirt` on the PATH, as the README's alias or `npm link` gives it.
    await writeFile(join(dir, 'bin', 'meshvirt'), `#!/bin/sh\nexec node ${MESHVIRT_BIN} "$@"\n`)
    await chmod(join(dir, 'bin', 'meshvirt'), 0o755)
    // An operator's key and user-data, for --ssh-key and --user-data.
    await writeFile(join(dir, 'id.pub'), 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExamplesExamplesExamplesExamplesExamplesEx op@example\n')
    await writeFile(join(dir, 'init.yaml'), '#cloud-config\nruncmd: [echo hello]\n')
    // The files the `image import` examples name, as small empty images in an image dir of every agent.
    await mkdir(join(dir, 'images'))
    for (const e of examples) {
      const file = /^image import (\S+)/.exec(commandText(e))?.[1]
      if (file !== undefined) execFileSync('qemu-img', ['create', '-q', '-f', /\.raw$/.test(file) ? 'raw' : 'qcow2', join(dir, 'images', basename(file)), '64M'])
    }
    // The commands talk to "the local agent": host-1's (its data dir is the README's /var/lib/meshvirt).
    // `meshvirt login` keeps its profile in the test's dir, not the machine's ~/.config.
    env = { PATH: `${join(dir, 'bin')}:${process.env.PATH ?? ''}`, MESHVIRT_DATA_DIR: join(dir, 'host-1'), MESHVIRT_TIMING: 'local', HOME: process.env.HOME ?? '/root', MESHVIRT_CONFIG_DIR: join(dir, 'config') }
  }, 240_000)

  afterAll(async () => {
    for (const c of background) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
    await Promise.all(agents.map(async (a) => { await a.stop() }))
    for (const i of [1, 2, 3, 4]) await killQemusUnder(join(dir, `host-${i}`))
    await rm(dir, { recursive: true, force: true })
  })

  const substitute = (line: string, host: number): string => {
    let s = line
    if (/meshvirt vm resize /.test(s)) s = s.replace(/--memory \d+G\b/g, '--memory 256M').replace(/--disk \d+G\b/g, '--disk 2048M')
    s = s
      .replaceAll('/etc/meshvirt/', `${join(dir, 'etc', 'meshvirt')}/`)
      .replaceAll('/var/lib/meshvirt', join(dir, `host-${host}`))
      .replaceAll('/srv/mv2', join(dir, `host-${host}`))
      .replace(/\/ip4\/0\.0\.0\.0\/tcp\/\d+/g, '/ip4/127.0.0.1/tcp/0')
      .replace(/--api-listen 0\.0\.0\.0:\d+/g, '--api-listen 127.0.0.1:0')
      .replace(/https:\/\/10\.0\.0\.\d+:\d+/g, apiUrl)
      .replace(/mvt1\.…/g, userToken)
      .replace(/\/ip4\/10\.0\.0\.1\/tcp\/\d+\/p2p\/\S+/g, bootstrapAddr)
      .replace(/--memory \d+G\b/g, '--memory 128M')
      .replace(/--disk \d+G\b/g, '--disk 1G')
      .replace(/^(meshvirt image import )(\S+)/, (_m, cmd: string, file: string) => `${cmd}${join(dir, 'images', basename(file))}`)
      .replace(/--image (\S+)/g, (_m, image: string) => `${isLibraryImage(image) ? `--image ${image} ` : ''}--kernel ${guest.kernel} --initrd ${guest.initrd} --cmdline "${guest.cmdline}"`)
      .replaceAll('vm-3f2a9c0d1e4b5a67', webId)
      .replace(/--ssh-key \S+/g, `--ssh-key ${join(dir, 'id.pub')}`)
      .replace(/--user-data \S+/g, `--user-data ${join(dir, 'init.yaml')}`)
    const rel = relative(REPO, guest.dir)
    if (rel !== '.cache/guest') s = s.replaceAll('.cache/guest/', `${rel}/`)
    if (/^meshvirt agent /.test(s)) {
      s = s.replace('meshvirt agent …', `meshvirt agent ${firstAgentFlags.replaceAll(join(dir, 'host-1'), join(dir, `host-${host}`)).replace(/\/tcp\/\d+(?=\s|$)/, '/tcp/0')}`)
      if (!/ (--listen|-l) /.test(s)) s += ' --listen /ip4/127.0.0.1/tcp/0'
      s += ` --name host-${host} --image-dir ${guest.dir} --image-dir ${join(dir, 'images')}`
    }
    return s
  }

  const run = async (line: string, opts: { timeoutMs?: number, follow?: boolean, stdin?: string } = {}): Promise<Run> => {
    return await new Promise((resolve) => {
      // Its own process group, so that a bound stops every command of a pipeline.
      const child = spawn('bash', ['-c', `set -o pipefail; ${line}`], { cwd: REPO, env, stdio: ['pipe', 'pipe', 'pipe'], detached: true })
      let stdout = ''
      let stderr = ''
      let timedOut = false
      child.stdout?.on('data', (d: Buffer) => { stdout += d.toString() })
      child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
      child.stdin?.end(opts.stdin ?? '')
      const timer = setTimeout(() => { timedOut = true; try { process.kill(-(child.pid as number), 'SIGTERM') } catch { /* gone */ } }, opts.follow === true ? FOLLOW_MS : opts.timeoutMs ?? EXAMPLE_TIMEOUT_MS)
      child.once('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr, timedOut }) })
    })
  }

  /** Runs an example and expects it to succeed (a `--follow` one: to keep running without failing). */
  const expectRuns = async (e: Example, host = 1): Promise<Run> => {
    const line = substitute(e.line, host)
    const follow = /--follow\b/.test(line) && !/--count\b/.test(line)
    const started = Date.now()
    const r = await run(line, { follow })
    took.push([Date.now() - started, e.line])
    const failed = follow ? !(r.timedOut || r.code === 0) : r.code !== 0
    const what = `${e.from}: ${e.line}\n  ran: ${line}\n  exit ${String(r.code)}${r.timedOut ? ' (stopped at its bound)' : ''}\n  stderr: ${r.stderr.slice(-800)}\n  stdout: ${r.stdout.slice(-400)}${failed ? `\n${agentDiagnostics()}` : ''}`
    if (follow) expect(r.timedOut || r.code === 0, what).toBe(true)
    else expect(r.code, what).toBe(0)
    return r
  }

  /** Each agent: alive or how it exited, and its last warnings and errors (for a failure's message). */
  const agentDiagnostics = (): string => agents.map((a, i) => {
    const status = a.child.exitCode !== null || a.child.signalCode !== null ? `EXITED (${String(a.child.exitCode ?? a.child.signalCode)})` : 'alive'
    const lines = a.output().split('\n').filter((l) => /"level":"(warn|error)"|Error|error:/.test(l)).slice(-12)
    return `--- host-${i + 1} agent (pid ${a.pid}) ${status}:\n${lines.join('\n')}`
  }).join('\n')

  const startAgent = async (e: Example, host: number): Promise<AgentProcess> => {
    const line = substitute(e.line, host)
    const child = spawn('bash', ['-c', `exec ${line}`], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] })
    const agent = await agentProcess(child, { dataDir: join(dir, `host-${host}`), readyTimeoutMs: 60_000, where: `${e.from} (${line})` })
    agents.push(agent)
    return agent
  }

  /** How long each example took, for the slowest-first line at the end (CI time is budgeted). */
  const took: Array<[number, string]> = []
  const pick = (test: (cmd: string, e: Example) => boolean): Example[] => examples.filter((e) => test(commandText(e), e))
  const done = new Set<Example>()
  const take = (list: Example[]): Example[] => { for (const e of list) done.add(e); return list }

  it('runs them all, in the order an operator would', async () => {
    // Set-up: the key, then the agents the examples start.
    for (const e of take(pick((c) => c.startsWith('cluster init')))) await expectRuns(e)
    for (const e of take(pick((c) => c.startsWith('cluster ca')))) await expectRuns(e)
    const agentLines = take(pick((c) => c.startsWith('agent')))
    const readmeFirst = agentLines.find((e) => e.from.startsWith('README') && !e.line.includes('--bootstrap'))
    const first = readmeFirst ?? agentLines.find((e) => !e.line.includes('--bootstrap'))
    expect(first, 'an example that starts the first agent').toBeDefined()
    const host1 = await startAgent(first as Example, 1)
    bootstrapAddr = host1.addr
    firstAgentFlags = substitute((first as Example).line, 1).replace(/^meshvirt agent /, '').replace(/ --name host-1 --image-dir \S+ --image-dir \S+$/, '')
    let next = 2
    for (const e of agentLines.filter((e) => e !== first)) {
      if (e.line.includes('--bootstrap')) {
        await startAgent(e, next++)
      } else {
        // Another "first host" example: it starts a cluster of its own; it runs, then stops.
        const alone = await startAgent(e, 4)
        await alone.stop()
        agents.splice(agents.indexOf(alone), 1)
      }
    }
    expect(agents.length, 'the examples start a 3-host cluster').toBe(3)
    await pollUntil(async () => {
      const r = await run('meshvirt host ls --json')
      return r.code === 0 && (JSON.parse(r.stdout) as unknown[]).length === 3
    }, { timeoutMs: 30_000, what: 'host-1 to see the 3 hosts' })

    for (const e of take(pick((c) => /^(host ls|cluster status|events)\b/.test(c) && !/--follow/.test(c)))) await expectRuns(e)
    // The help and the README each create a web-1 (differently): the later one replaces the earlier
    // (the test deletes it first; that delete is housekeeping, not an example).
    const created = new Set<string>()
    // Networks are cluster objects (no device exists until a VM with a NIC arrives): created, listed,
    // shown and deleted on this loopback cluster; VMs with --net are not (NOT_RUN).
    for (const e of take(pick((c) => c.startsWith('net create')))) await expectRuns(e)
    for (const e of take(pick((c) => /^net (ls|show)\b/.test(c)))) await expectRuns(e)
    for (const e of take(pick((c) => c.startsWith('net delete')))) await expectRuns(e)
    // The library first: the creates below name its images.
    for (const e of take(pick((c) => c.startsWith('image import')))) await expectRuns(e)
    for (const e of take(pick((c) => /^image (ls|show)\b/.test(c)))) await expectRuns(e)
    for (const e of take(pick((c, x) => c.startsWith('vm create') && !/--net /.test(x.line)))) {
      const name = /--name (\S+)/.exec(e.line)?.[1] ?? ''
      if (created.has(name)) expect((await run(`meshvirt vm delete ${name}`)).code).toBe(0)
      created.add(name)
      await expectRuns(e)
    }
    webId = (JSON.parse((await run('meshvirt vm show web-1 --json')).stdout) as { id: string }).id
    expect(webId).toMatch(/^vm-[0-9a-f]{16}$/)

    for (const e of take(pick((c) => /^vm (ls|show)\b/.test(c)))) await expectRuns(e)
    // An operator types into a guest that has booted: its serial shell's prompt is in the log first.
    await pollUntil(async () => /guest# /.test((await run('meshvirt vm console web-1 --log --all')).stdout),
      { timeoutMs: 120_000, intervalMs: 1_000, what: 'web-1\'s serial shell to start' })
    for (const e of take(pick((c) => c.startsWith('vm console')))) {
      const r = await expectRuns(e)
      if (e.line.startsWith('echo "uname -a"')) expect(r.stdout).toMatch(/Linux/)
    }
    // The next event of web-1: its migration, below.
    const waiting = pick((c) => c.startsWith('events') && /--count\b/.test(c))
    const waiters = take(waiting).map((e) => ({ e, run: run(substitute(e.line, 1)) }))
    for (const e of take(pick((c) => c.startsWith('events') && /--follow\b/.test(c) && !/--count\b/.test(c)))) await expectRuns(e)

    // Housekeeping: the VMs no later example names are deleted, so the live migrations below do not
    // share two cores with their guests (a loaded machine slows QMP past its bounds).
    for (const name of created) {
      if (!examples.some((e) => /^vm (migrate|replicate|failover|stop|start|delete)\b/.test(commandText(e)) && e.line.includes(` ${name}`))) {
        expect((await run(`meshvirt vm delete ${name}`)).code).toBe(0)
      }
    }
    for (const e of take(pick((c) => c.startsWith('vm replicate')))) await expectRuns(e)
    // `--to host-3` is refused where web-1 already runs on host-3 (the help and the README both
    // have one): the test first moves it elsewhere (housekeeping, not an example).
    const web1OnHost3 = async (): Promise<boolean> => (JSON.parse((await run('meshvirt vm show web-1 --json')).stdout) as { owner: string }).owner === agents[2]?.hostId
    for (const e of take(pick((c) => c.startsWith('vm migrate')))) {
      if (/vm migrate web-1 --to host-3/.test(e.line) && await web1OnHost3()) {
        const r = await run('meshvirt vm migrate web-1')
        expect(r.code, `housekeeping: meshvirt vm migrate web-1 (off host-3): ${r.stderr.slice(-600)}`).toBe(0)
      }
      await expectRuns(e)
    }
    for (const w of waiters) {
      const r = await w.run
      expect(r.code, `${w.e.from}: ${w.e.line}: ${r.stderr}`).toBe(0)
    }

    for (const e of take(pick((c) => /^host (drain|undrain)\b/.test(c)))) await expectRuns(e)
    // Rebalancing: the mode, the dry run; then off again (housekeeping, not an example), so no VM
    // moves under the examples that follow (with the default 2-minute hold none would anyway).
    for (const e of take(pick((c) => c.startsWith('cluster balance')))) await expectRuns(e)
    expect((await run('meshvirt cluster balance --mode off')).code).toBe(0)
    for (const e of take(pick((c) => c.startsWith('vm failover')))) {
      // Failover is for a dead owner: on this healthy cluster the example gets its documented refusal.
      const r = await run(substitute(e.line, 1))
      expect(r.stderr, `${e.from}: ${e.line}`).toMatch(/failover is only for a dead owner .*\[WRONG_STATE\]/)
    }

    // Resizes of web-1 (running, then stopped), after the migrations: a bigger guest moves slower.
    for (const e of take(pick((_c, x) => x.line.includes('meshvirt vm resize ')))) await expectRuns(e)
    const resized = JSON.parse((await run('meshvirt vm show web-1 --json')).stdout) as { state: string, resources: { vcpus: number, memoryBytes: number, diskBytes: number } }
    expect(resized).toMatchObject({ state: 'running', resources: { vcpus: 1, memoryBytes: 256 * 2 ** 20, diskBytes: 2 * 2 ** 30 } })

    // Groups: created, listed, scaled out and in, deleted — each command waits for the members.
    for (const e of take(pick((c, x) => c.startsWith('group create') && !/--net /.test(x.line)))) await expectRuns(e)
    for (const e of take(pick((c) => /^group (ls|show)\b/.test(c)))) await expectRuns(e)
    const members = async (): Promise<string[]> => (JSON.parse((await run('meshvirt group show api --json')).stdout) as { members: Array<{ name: string, state: string }> }).members.filter((m) => m.state === 'running').map((m) => m.name).sort()
    expect(await members()).toEqual(['api-1', 'api-2'])
    for (const e of take(pick((c) => c.startsWith('group scale')))) {
      await expectRuns(e)
      const count = Number(/--count (\d+)/.exec(e.line)?.[1])
      expect(await members()).toEqual(Array.from({ length: count }, (_, i) => `api-${i + 1}`))
    }
    for (const e of take(pick((c) => c.startsWith('group delete')))) await expectRuns(e)
    expect((await run('meshvirt vm ls --json')).stdout).not.toMatch(/"api-\d+"/)

    // Users of the API: a token from `user add`, a login with it to host-1's API, a logout, a revocation.
    apiUrl = (JSON.parse(await readFile(join(dir, 'host-1', 'agent.json'), 'utf8')) as { apiUrl?: string }).apiUrl ?? ''
    expect(apiUrl, 'host-1 serves the API (the README\'s --api-listen)').toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
    for (const e of take(pick((c) => c.startsWith('user add')))) {
      const r = await expectRuns(e)
      userToken ||= /mvt1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/.exec(r.stdout)?.[0] ?? ''
    }
    expect(userToken).not.toBe('')
    for (const e of take(pick((c) => c.startsWith('login')))) expect((await expectRuns(e)).stdout).toContain('logged in to')
    for (const e of take(pick((c) => c.startsWith('logout')))) await expectRuns(e)
    for (const e of take(pick((c) => c.startsWith('user revoke')))) await expectRuns(e)

    // Stop, start, delete: a chain that runs them all goes last, and the single ones it contains are its.
    const lifecycle = take(pick((c) => /^vm (stop|start|delete)\b/.test(c)))
    const chains = lifecycle.filter((e) => e.segments.length > 1)
    const inChains = new Set(chains.flatMap((e) => e.segments.map((s) => s.join(' '))))
    for (const e of lifecycle.filter((e) => e.segments.length === 1 && !inChains.has(e.segments[0]?.join(' ') ?? ''))) {
      await expectRuns(e)
    }
    for (const e of chains) await expectRuns(e)
    // A name no VM reads any more: removed last.
    for (const e of take(pick((c) => c.startsWith('image rm')))) await expectRuns(e)

    const skipped = examples.filter((e) => !done.has(e))
    for (const e of skipped) expect(NOT_RUN.some(([re]) => re.test(e.line)), `${e.from}: '${e.line}' is neither run nor listed in NOT_RUN`).toBe(true)
    console.log(`slowest examples: ${took.sort((a, b) => b[0] - a[0]).slice(0, 8).map(([ms, l]) => `${(ms / 1000).toFixed(1)} s ${l}`).join('; ')}`)
    console.log(`ran ${done.size} examples; substituted: ${SUBSTITUTIONS.join('; ')}; not run: ${skipped.map((e) => `${e.line} (${NOT_RUN.find(([re]) => re.test(e.line))?.[1] ?? ''})`).join('; ')}`)
  }, 30 * 60_000)
})

/** The first meshvirt command of an example, without `meshvirt`: `vm create --name …`. */
function commandText (e: Example): string {
  return (e.segments.find((s) => s[0] === 'meshvirt') ?? []).slice(1).join(' ')
}

/** `--image VALUE` of an example: a library name (no path, no disk-image suffix), as the CLI decides. */
function isLibraryImage (value: string): boolean {
  return !value.includes('/') && !/\.(qcow2|raw|img)$/.test(value)
}

/** The same line written in two places runs once. */
function dedupe (examples: Example[]): Example[] {
  const seen = new Set<string>()
  return examples.filter((e) => { if (seen.has(e.line)) return false; seen.add(e.line); return true })
}
