/**
 * The dashboard: one self-contained page (no build step, no third-party script, nothing fetched
 * from outside the agent) fed by `/api/stream` server-sent events. The DOM carries data-*
 * attributes (host, vm, state) so scripts and the browser test can read it.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>meshvirt</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; background: #fafafa; }
  h1 { font-size: 1.3em; margin: 0 0 .2em; } h2 { font-size: 1.05em; margin: 1.4em 0 .4em; }
  #status { color: #666; font-size: .9em; } #status.down { color: #b00; }
  table { border-collapse: collapse; width: 100%; background: #fff; }
  th, td { text-align: left; padding: .3em .6em; border-bottom: 1px solid #e4e4e4; white-space: nowrap; }
  th { font-weight: 600; color: #555; font-size: .85em; text-transform: uppercase; }
  .bar { position: relative; width: 11em; height: 1.1em; background: #e9eef3; border-radius: 3px; overflow: hidden; }
  .bar i { position: absolute; left: 0; top: 0; bottom: 0; background: #4a8bd6; }
  .bar b { position: absolute; top: 0; bottom: 0; background: #f0b44c; }
  .bar span { position: absolute; left: .4em; top: 0; font-size: .75em; line-height: 1.5em; }
  .state-running, .live-alive { color: #1a7f37; } .state-crashed, .state-failed, .live-dead { color: #b00; }
  .state-stopped, .live-suspect, .state-unknown { color: #9a6700; }
  #events td { font-family: ui-monospace, monospace; font-size: .85em; }
  .self { font-weight: 600; }
</style>
</head>
<body>
<h1>meshvirt cluster</h1>
<div id="status">connecting…</div>
<h2>Hosts <span id="host-count"></span></h2>
<table id="hosts"><thead><tr><th>Host</th><th>State</th><th>vCPU</th><th>Memory</th><th>VMs</th><th>Labels</th></tr></thead><tbody></tbody></table>
<h2>VMs <span id="vm-count"></span></h2>
<table id="vms"><thead><tr><th>Name</th><th>State</th><th>Owner</th><th>Replicas</th><th>Epoch</th><th>vCPU</th><th>Memory</th><th>Id</th></tr></thead><tbody></tbody></table>
<h2>Events</h2>
<table id="events"><thead><tr><th>Time</th><th>Event</th><th>Subject</th><th>By</th><th>Detail</th></tr></thead><tbody></tbody></table>
<script>
'use strict'
const MAX_EVENTS = 200
let names = {}
const $ = (s) => document.querySelector(s)
const el = (tag, attrs, ...kids) => {
  const e = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v)
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)))
  return e
}
const size = (b) => { const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB']; let i = 0; while (b >= 1024 && i < u.length - 1) { b /= 1024; i++ } return (i ? b.toFixed(1) : b) + ' ' + u[i] }
const bar = (used, reserved, total, fmt) => {
  const pct = (n) => total > 0 ? Math.min(100, 100 * n / total) : 0
  const b = el('div', { class: 'bar', title: 'allocated ' + fmt(used) + ', reserved ' + fmt(reserved) + ' of ' + fmt(total) })
  b.append(el('i', { style: 'width:' + pct(used) + '%' }), el('b', { style: 'left:' + pct(used) + '%;width:' + pct(reserved) + '%' }), el('span', {}, fmt(used) + ' / ' + fmt(total)))
  return b
}
function renderSnapshot (s) {
  names = Object.fromEntries(s.hosts.map((h) => [h.hostId, h.hostname]))
  const hosts = $('#hosts tbody'); hosts.replaceChildren()
  for (const h of s.hosts) {
    const live = h.liveness === 'alive' ? h.state : h.liveness
    hosts.append(el('tr', { 'data-host': h.hostId, 'data-liveness': h.liveness },
      el('td', { class: h.self ? 'self' : '', title: h.hostId }, h.hostname + (h.self ? ' (this agent)' : '')),
      el('td', { class: 'live-' + h.liveness }, live),
      el('td', {}, bar(h.allocated.vcpus, h.reserved.vcpus, h.allocatable.vcpus, String)),
      el('td', {}, bar(h.allocated.memoryBytes, h.reserved.memoryBytes, h.allocatable.memoryBytes, size)),
      el('td', {}, h.vms),
      el('td', {}, Object.entries(h.labels).map(([k, v]) => k + '=' + v).join(', ') || '-')))
  }
  $('#host-count').textContent = '(' + s.hosts.length + ')'
  const vms = $('#vms tbody'); vms.replaceChildren()
  for (const v of s.vms) {
    vms.append(el('tr', { 'data-vm': v.id, 'data-name': v.name, 'data-state': v.state },
      el('td', {}, v.name), el('td', { class: 'state state-' + v.state }, v.unknownSinceMs ? v.state + ' — ' + v.ownerLiveness + ' since ' + new Date(v.unknownSinceMs).toLocaleTimeString() : v.state), el('td', { 'data-owner': v.owner }, v.ownerName), el('td', {}, v.replicas.join(', ') || '-'),
      el('td', {}, v.epoch), el('td', {}, v.vcpus), el('td', {}, size(v.memoryBytes)), el('td', {}, v.id)))
  }
  $('#vm-count').textContent = '(' + s.vms.length + ')'
  $('#status').textContent = 'live · updated ' + new Date(s.timeMs).toLocaleTimeString()
  $('#status').className = ''
}
function renderEvent (r) {
  const e = r.event
  const subject = e.vmName || e.vmId || names[e.subjectHostId] || (e.subjectHostId || '').slice(-12)
  const row = el('tr', { 'data-cursor': r.cursor, 'data-kind': e.kind },
    el('td', {}, new Date(e.timeMs).toLocaleTimeString()), el('td', {}, e.kind), el('td', {}, subject),
    el('td', { title: e.hostId }, names[e.hostId] || e.hostId.slice(-12)), el('td', {}, e.message))
  const body = $('#events tbody')
  body.prepend(row)
  while (body.children.length > MAX_EVENTS) body.lastChild.remove()
}
const source = new EventSource('/api/stream')
source.addEventListener('snapshot', (m) => renderSnapshot(JSON.parse(m.data)))
source.addEventListener('event', (m) => renderEvent(JSON.parse(m.data)))
source.onerror = () => { $('#status').textContent = 'disconnected, retrying…'; $('#status').className = 'down' }
source.onopen = () => { $('#events tbody').replaceChildren() }
</script>
</body>
</html>
`
