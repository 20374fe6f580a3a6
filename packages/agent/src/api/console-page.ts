/**
 * The management console: one self-contained page the API serves at `/` (no build step, nothing
 * fetched from outside the agent). It holds no data: after a user token is given it calls the same
 * JSON routes as any client, so the agent's roles decide what it may do, and it shows no action the
 * token's role lacks. Rows carry data-* attributes (vm, state, host) for scripts and the browser test.
 * Text from the cluster is set with textContent only (never parsed as HTML).
 */
export const CONSOLE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>meshvirt console</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/assets/xterm.css">
<script src="/assets/xterm.js"></script>
<link rel="stylesheet" href="/assets/uplot.css">
<script src="/assets/uplot.js"></script>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; background: #fafafa; }
  h1 { font-size: 1.3em; margin: 0 0 .2em; } h2 { font-size: 1.05em; margin: 1.4em 0 .4em; }
  table { border-collapse: collapse; width: 100%; background: #fff; }
  th, td { text-align: left; padding: .3em .6em; border-bottom: 1px solid #e4e4e4; white-space: nowrap; }
  th { font-weight: 600; color: #555; font-size: .85em; text-transform: uppercase; }
  .state-running { color: #1a7f37; } .state-stopped, .state-migrating { color: #9a6700; } .state-crashed, .state-failed { color: #b00; }
  #msg { min-height: 1.4em; color: #555; } #msg.error { color: #b00; }
  pre#console { background: #111; color: #ddd; padding: .6em; height: 16em; overflow: auto; font-size: .8em; }
  form { background: #fff; padding: .6em; border: 1px solid #e4e4e4; } input, select, button { font: inherit; margin: 0 .3em .3em 0; }
  .hidden { display: none; } #who { color: #555; }
  #charts { display: flex; flex-wrap: wrap; gap: 1em; } .chart { background: #fff; border: 1px solid #e4e4e4; padding: .4em; }
  .chart-title { font-weight: 600; font-size: .9em; }
</style>
</head>
<body>
<h1>meshvirt</h1>
<form id="login"><label>User token <input id="token" type="password" size="60" autocomplete="off" placeholder="mvt1.…"></label><button>Log in</button></form>
<div id="main" class="hidden">
  <div id="who"></div><button id="logout" type="button">Log out</button>
  <div id="msg"></div>
  <h2>Hosts</h2>
  <table id="hosts"><thead><tr><th>Host</th><th>State</th><th>vCPU allocated</th><th>Memory allocated</th><th>VMs</th></tr></thead><tbody></tbody></table>
  <h2>VMs</h2>
  <form id="create" class="operator">
    <input id="c-name" placeholder="name" required size="12">
    <input id="c-vcpus" type="number" min="1" value="1" size="3" title="vCPUs">
    <input id="c-memory" type="number" min="16" value="128" size="6" title="memory (MiB)"> MiB
    <select id="c-image"><option value="">(no library image)</option></select>
    <input id="c-kernel" placeholder="or a kernel path on the host" size="28">
    <input id="c-initrd" placeholder="initrd path" size="20">
    <input id="c-cmdline" placeholder="kernel command line" size="28">
    <button>Create VM</button>
  </form>
  <table id="vms"><thead><tr><th>Name</th><th>State</th><th>Host</th><th>vCPU</th><th>Memory</th><th class="operator">Actions</th></tr></thead><tbody></tbody></table>
  <div id="migration" class="hidden"><h2>Migration <span id="migration-what"></span></h2><div id="migration-summary"></div><div id="migration-chart"></div></div>
  <h2>Use, last hour</h2>
  <div id="charts"></div>
  <h2>Serial log <span id="console-vm"></span></h2>
  <pre id="console"></pre>
  <h2 class="operator">Terminal <span id="terminal-vm"></span></h2>
  <div id="terminal" class="operator"></div>
  <h2>Events</h2>
  <table id="events"><thead><tr><th>Time</th><th>Event</th><th>VM</th><th>Detail</th></tr></thead><tbody></tbody></table>
</div>
<script>
'use strict'
const RANK = { viewer: 0, operator: 1, admin: 2 }
const MIB = 1024 * 1024
let token = sessionStorage.getItem('meshvirt-token') || ''
let me = null
let hostNames = {}
let consoleVm = ''
let consoleOffset = 0
let eventCursor = 0
let generation = 0
const $ = (s) => document.querySelector(s)
const el = (tag, text, attrs = {}) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); return e }
const say = (text, error = false) => { $('#msg').textContent = text; $('#msg').className = error ? 'error' : '' }
const stateOf = (s) => String(s || '').replace(/^VM_STATE_/, '').toLowerCase()

async function api (method, path, body) {
  const res = await fetch(path, { method, headers: { authorization: 'Bearer ' + token, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined })
  const json = await res.json().catch(() => ({}))
  if (!res.ok) throw new Error((json.error && json.error.message) || ('HTTP ' + res.status))
  return json
}

function claims (t) {
  try { return JSON.parse(atob(t.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))) } catch { return null }
}

async function login (t) {
  const c = claims(t)
  if (!c) throw new Error('not a meshvirt user token')
  token = t
  await api('GET', '/v1/hosts')
  me = { user: c.u, role: c.r }
  sessionStorage.setItem('meshvirt-token', t)
  $('#login').classList.add('hidden')
  $('#main').classList.remove('hidden')
  $('#who').textContent = 'logged in as ' + me.user + ' (' + me.role + ')'
  document.body.dataset.role = me.role
  for (const e of document.querySelectorAll('.operator')) e.classList.toggle('hidden', RANK[me.role] < RANK.operator)
  const g = ++generation
  await refresh()
  void images()
  void followHistory(g)
  void followEvents(g)
  void followConsole(g)
}

async function refresh () {
  if (!me) return
  const [hosts, vms] = await Promise.all([api('GET', '/v1/hosts'), api('GET', '/v1/vms')])
  hostNames = {}
  const hbody = $('#hosts tbody'); hbody.replaceChildren()
  for (const h of (hosts.hostList && hosts.hostList.hosts) || []) {
    const a = h.advert || {}; const cap = a.capacity || {}; const total = cap.total || {}; const used = cap.allocated || {}
    hostNames[a.hostId] = a.hostname || a.hostId
    const tr = el('tr', undefined, { 'data-host': a.hostId })
    tr.append(el('td', a.hostname), el('td', h.liveness), el('td', (used.vcpus || 0) + ' / ' + (total.vcpus || 0)),
      el('td', Math.round((used.memoryBytes || 0) / MIB) + ' / ' + Math.round((total.memoryBytes || 0) / MIB) + ' MiB'), el('td', (a.vms || []).length))
    hbody.append(tr)
  }
  const vbody = $('#vms tbody'); vbody.replaceChildren()
  const acts = me && RANK[me.role] >= RANK.operator
  for (const v of (vms.vmList && vms.vmList.vms) || []) {
    const s = v.summary || {}; const state = stateOf(s.state); const r = s.resources || {}
    const tr = el('tr', undefined, { 'data-vm': s.name, 'data-state': state, 'data-owner': hostNames[s.owner] || s.owner || '' })
    tr.append(el('td', s.name), el('td', state, { class: 'state-' + state }), el('td', hostNames[s.owner] || s.owner || ''), el('td', r.vcpus || 0), el('td', Math.round((r.memoryBytes || 0) / MIB) + ' MiB'))
    if (acts) {
      const td = el('td')
      const act = (label, method, path, body, done) => {
        const b = el('button', label, { type: 'button', 'data-action': label.toLowerCase() })
        b.onclick = async () => {
          b.disabled = true; say(label + ' ' + s.name + '…')
          try { await api(method, path, body && body()); say(done || (label + ' ' + s.name + ': done')) } catch (err) { say(label + ' ' + s.name + ': ' + err.message, true) }
          b.disabled = false; await refresh().catch(() => {})
        }
        td.append(b)
      }
      const path = '/v1/vms/' + encodeURIComponent(s.name)
      act('Start', 'POST', path + '/start')
      act('Stop', 'POST', path + '/stop')
      const to = el('select', undefined, { 'data-migrate-to': s.name })
      for (const [id, name] of Object.entries(hostNames)) if (id !== s.owner) to.append(el('option', name, { value: id }))
      td.append(to)
      const m = el('button', 'Migrate', { type: 'button', 'data-action': 'migrate' })
      m.onclick = async () => { m.disabled = true; await migrate(s.name, to.value, hostNames[to.value] || to.value); m.disabled = false; await refresh().catch(() => {}) }
      td.append(m)
      act('Delete', 'DELETE', path)
      const c = el('button', 'Log', { type: 'button', 'data-action': 'console' })
      c.onclick = () => { consoleVm = s.name; consoleOffset = 0; $('#console').textContent = ''; $('#console-vm').textContent = s.name }
      const t = el('button', 'Terminal', { type: 'button', 'data-action': 'attach' })
      t.onclick = () => { attach(s.name) }
      td.append(c, t)
      tr.append(td)
    }
    vbody.append(tr)
  }
}

// A migration: polls the VM while the request runs and draws the source's progress (disk mirror and
// RAM, % of each), then says how it ended (the destination's record: total time, guest pause).
let migrationChart = null
async function migrate (name, toHost, toName) {
  $('#migration').classList.remove('hidden')
  $('#migration').dataset.vm = name
  $('#migration').dataset.phase = 'starting'
  $('#migration-what').textContent = name + ' → ' + toName
  $('#migration-summary').textContent = 'starting…'
  say('Migrate ' + name + '…')
  const t = []; const disk = []; const ram = []
  const draw = () => {
    if (migrationChart) migrationChart.destroy()
    migrationChart = new uPlot({ width: 500, height: 150, series: [{}, { label: 'disk mirrored %', stroke: '#1a7f37' }, { label: 'RAM sent %', stroke: '#4a8bd6' }], scales: { x: { time: false }, y: { range: [0, 100] } }, axes: [{ label: 'seconds' }, {}] }, [t, disk, ram], $('#migration-chart'))
  }
  let running = true
  const poll = (async () => {
    while (running) {
      try {
        const p = ((await api('GET', '/v1/vms/' + encodeURIComponent(name))).vm || {}).migration
        if (p && p.phase) {
          $('#migration').dataset.phase = p.phase
          t.push((p.elapsedMs || 0) / 1000)
          disk.push(p.diskTotalBytes ? 100 * (p.diskCopiedBytes || 0) / p.diskTotalBytes : null)
          ram.push(p.ramTotalBytes ? 100 * (p.ramTransferredBytes || 0) / p.ramTotalBytes : null)
          $('#migration-summary').textContent = p.phase + ': disk ' + Math.round((p.diskCopiedBytes || 0) / MIB) + '/' + Math.round((p.diskTotalBytes || 0) / MIB) + ' MiB, RAM ' + Math.round((p.ramTransferredBytes || 0) / MIB) + ' MiB sent, ' + Math.round((p.ramRemainingBytes || 0) / MIB) + ' MiB left'
          if (t.length >= 2) draw()
        }
      } catch { /* the VM is between hosts */ }
      await new Promise((r) => setTimeout(r, 250))
    }
  })()
  try {
    const done = await api('POST', '/v1/vms/' + encodeURIComponent(name) + '/migrate', { toHost })
    const rec = (done.vm && done.vm.lastMigration) || {}
    $('#migration').dataset.phase = 'complete'
    $('#migration-summary').textContent = 'done in ' + Math.round(rec.totalMs || 0) + ' ms, guest paused ' + Math.round(rec.downtimeMs || 0) + ' ms, ' + Math.round((rec.ramBytes || 0) / MIB) + ' MiB of RAM and ' + Math.round((rec.diskBytes || 0) / MIB) + ' MiB of disk moved'
    say('migrated ' + name)
  } catch (err) {
    $('#migration').dataset.phase = 'failed'
    $('#migration-summary').textContent = 'failed: ' + err.message
    say('Migrate ' + name + ': ' + err.message, true)
  }
  running = false
  await poll
}

// The serial port, read-write: keys go to the guest over a WebSocket, its output comes back.
let term = null
let sock = null
function attach (name) {
  if (sock) sock.close()
  if (term) term.dispose()
  $('#terminal-vm').textContent = name
  term = new Terminal({ rows: 20, cols: 100 })
  term.open($('#terminal'))
  window.meshvirtTerm = term
  document.body.dataset.console = 'opening'
  sock = new WebSocket('wss://' + location.host + '/v1/vms/' + encodeURIComponent(name) + '/console/attach', ['meshvirt-console', token])
  sock.binaryType = 'arraybuffer'
  sock.onopen = () => { document.body.dataset.console = 'open'; term.focus() }
  sock.onmessage = (m) => { term.write(new Uint8Array(m.data)) }
  sock.onclose = (e) => { document.body.dataset.console = 'closed'; term.write('\\r\\n[console closed' + (e.reason ? ': ' + e.reason : '') + ']\\r\\n') }
  term.onData((d) => { if (sock && sock.readyState === 1) sock.send(d) })
}

// Charts of the last hour, from any agent's history of the gossip (uPlot).
const charts = []
async function drawHistory () {
  const h = (await api('GET', '/v1/history')).usageHistory || {}
  for (const c of charts) c.destroy()
  charts.length = 0
  const box = $('#charts')
  box.replaceChildren()
  const list = (h.series || []).sort((a, b) => (a.kind + a.name).localeCompare(b.kind + b.name))
  for (const s of list) {
    const t = (s.timesMs || []).map((x) => x / 1000)
    if (t.length < 2) continue
    const n = (a, scale) => (a && a.length === t.length ? a.map((v) => (v === null || Number.isNaN(v) ? null : v * scale)) : t.map(() => null))
    const wrap = el('div', undefined, { class: 'chart', 'data-chart': s.kind + ':' + s.name })
    wrap.append(el('div', (s.kind === 'host' ? 'host ' : 'VM ') + s.name, { class: 'chart-title' }))
    box.append(wrap)
    const size = { width: 380, height: 140 }
    if (s.kind === 'host') {
      charts.push(new uPlot({ ...size, series: [{}, { label: 'CPU %', stroke: '#4a8bd6', scale: '%' }, { label: 'memory GiB', stroke: '#f0b44c', scale: 'GiB' }],
        scales: { '%': { range: [0, 100] } }, axes: [{}, { scale: '%' }, { scale: 'GiB', side: 1 }] }, [t, n(s.cpu, 100), n(s.memoryBytes, 1 / 1073741824)], wrap))
      charts.push(new uPlot({ ...size, series: [{}, { label: 'disk read MB/s', stroke: '#1a7f37' }, { label: 'disk write MB/s', stroke: '#b00' }, { label: 'net rx MB/s', stroke: '#4a8bd6' }, { label: 'net tx MB/s', stroke: '#9a6700' }] },
        [t, n(s.diskReadBps, 1e-6), n(s.diskWriteBps, 1e-6), n(s.netRxBps, 1e-6), n(s.netTxBps, 1e-6)], wrap))
    } else {
      charts.push(new uPlot({ ...size, series: [{}, { label: 'CPU cores', stroke: '#4a8bd6', scale: 'cores' }, { label: 'memory MiB', stroke: '#f0b44c', scale: 'MiB' }],
        axes: [{}, { scale: 'cores' }, { scale: 'MiB', side: 1 }] }, [t, n(s.cpu, 1), n(s.memoryBytes, 1 / MIB)], wrap))
      const has = (a) => (a || []).some((v) => v !== null && !Number.isNaN(v))
      if (has(s.diskReadBps) || has(s.netRxBps)) {
        wrap.dataset.io = 'true'
        charts.push(new uPlot({ ...size, series: [{}, { label: 'disk read MB/s', stroke: '#1a7f37' }, { label: 'disk write MB/s', stroke: '#b00' }, { label: 'net rx MB/s', stroke: '#4a8bd6' }, { label: 'net tx MB/s', stroke: '#9a6700' }] },
          [t, n(s.diskReadBps, 1e-6), n(s.diskWriteBps, 1e-6), n(s.netRxBps, 1e-6), n(s.netTxBps, 1e-6)], wrap))
      }
      if (has(s.replicaLagS)) {
        wrap.dataset.replicated = 'true'
        charts.push(new uPlot({ ...size, series: [{}, { label: 'replica lag s', stroke: '#b00' }] }, [t, n(s.replicaLagS, 1)], wrap))
      }
    }
  }
  return h.intervalMs || 15000
}

async function followHistory (g) {
  while (g === generation) {
    let wait = 15000
    try { wait = await drawHistory() } catch (err) { say('history: ' + err.message, true) }
    await new Promise((r) => setTimeout(r, Math.max(1000, wait)))
  }
}

async function images () {
  const list = await api('GET', '/v1/images').catch(() => ({}))
  for (const i of (list.imageList && list.imageList.images) || []) $('#c-image').append(el('option', i.ref, { value: i.ref }))
}

async function followEvents (g) {
  while (g === generation) {
    try {
      const page = await api('GET', '/v1/events?limit=100&waitMs=10000&after=' + eventCursor)
      const list = (page.eventList && page.eventList.events) || []
      if (page.eventList && page.eventList.nextCursor) eventCursor = page.eventList.nextCursor
      const body = $('#events tbody')
      for (const r of list) {
        const e = r.event || {}
        const kind = String(e.kind || '').replace(/^EVENT_KIND_/, '').toLowerCase().replace(/_/g, '-')
        const tr = el('tr', undefined, { 'data-kind': kind })
        tr.append(el('td', new Date(Number(e.timeMs || 0)).toLocaleTimeString()), el('td', kind), el('td', e.vmName || ''), el('td', e.message || ''))
        body.prepend(tr)
        while (body.children.length > 200) body.lastChild.remove()
      }
      if (list.length > 0) await refresh().catch(() => {})
    } catch (err) {
      say('events: ' + err.message, true)
      await new Promise((r) => setTimeout(r, 2000))
    }
  }
}

async function followConsole (g) {
  while (g === generation) {
    if (consoleVm !== '') {
      try {
        const chunk = (await api('GET', '/v1/vms/' + encodeURIComponent(consoleVm) + '/console?maxBytes=65536&offset=' + consoleOffset)).consoleChunk || {}
        if (chunk.data) { const pre = $('#console'); pre.textContent += atob(chunk.data); pre.scrollTop = pre.scrollHeight }
        if (chunk.nextOffset) consoleOffset = chunk.nextOffset
      } catch (err) { say('console of ' + consoleVm + ': ' + err.message, true) }
    }
    await new Promise((r) => setTimeout(r, 1000))
  }
}

$('#login').onsubmit = async (ev) => {
  ev.preventDefault()
  try { await login($('#token').value.trim()) } catch (err) { say('', false); alert('login failed: ' + err.message) }
}
$('#logout').onclick = () => { sessionStorage.removeItem('meshvirt-token'); location.reload() }
$('#create').onsubmit = async (ev) => {
  ev.preventDefault()
  const name = $('#c-name').value.trim(); const image = $('#c-image').value; const kernel = $('#c-kernel').value.trim()
  const spec = { name, resources: { vcpus: Number($('#c-vcpus').value), memoryBytes: Number($('#c-memory').value) * MIB }, boot: image ? { library: { ref: image } } : { kernel, initrd: $('#c-initrd').value.trim(), cmdline: $('#c-cmdline').value.trim() } }
  say('creating ' + name + '…')
  try { await api('POST', '/v1/vms', spec); say('created ' + name) } catch (err) { say('create ' + name + ': ' + err.message, true) }
  await refresh().catch(() => {})
}
setInterval(() => { refresh().catch(() => {}) }, 3000)
if (token) login(token).catch(() => { sessionStorage.removeItem('meshvirt-token') })
</script>
</body>
</html>
`
