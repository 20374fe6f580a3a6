import type { Command } from './command.js'

export function commandHelp (cmd: Command): string {
  const opts = Object.entries(cmd.options).map(([name, o]) => {
    const flag = `${o.short !== undefined ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` ${o.valueName ?? 'VALUE'}` : ''}`
    return `  ${flag.padEnd(34)} ${o.description}${o.multiple === true ? ' (repeatable)' : ''}`
  })
  return [
    `meshvirt ${cmd.path.join(' ')} — ${cmd.summary}`,
    '',
    `usage: ${cmd.usage}`,
    '',
    'options:',
    ...opts,
    '  -h, --help                         show this help',
    '',
    'examples:',
    ...cmd.examples.map((e) => `  ${e}`)
  ].join('\n')
}

export function topHelp (commands: Command[]): string {
  const groups = new Map<string, Command[]>()
  for (const c of commands) groups.set(c.path[0] ?? '', [...(groups.get(c.path[0] ?? '') ?? []), c])
  const lines = [
    'meshvirt — coordinator-free virtualization: every host runs the same agent; agents form a',
    'libp2p mesh, gossip their capacity and negotiate VM placement with each other.',
    '',
    'usage: meshvirt COMMAND [SUBCOMMAND] [options]      (meshvirt COMMAND --help for details)',
    '',
    'commands:'
  ]
  for (const cmds of groups.values()) {
    for (const c of cmds) lines.push(`  ${c.path.join(' ').padEnd(22)} ${c.summary}`)
  }
  lines.push('', 'Commands other than `agent` and `cluster init` talk to the local agent through its control',
    'socket in the data dir (--data-dir, or MESHVIRT_DATA_DIR; default /var/lib/meshvirt).',
    '', 'examples:',
    '  meshvirt cluster init --out /etc/meshvirt/cluster.key',
    '  meshvirt agent --data-dir /var/lib/meshvirt --cluster-key /etc/meshvirt/cluster.key --label zone=a',
    '  meshvirt host ls')
  return lines.join('\n')
}

/** `meshvirt vm --help`: the group's subcommands, each with its first example. */
export function groupHelp (group: string, commands: Command[]): string {
  const cmds = commands.filter((c) => c.path[0] === group)
  return [
    `meshvirt ${group} — ${cmds.length} subcommand${cmds.length === 1 ? '' : 's'}`,
    '',
    `usage: meshvirt ${group} SUBCOMMAND [options]      (meshvirt ${group} SUBCOMMAND --help for details)`,
    '',
    'subcommands:',
    ...cmds.map((c) => `  ${c.path.slice(1).join(' ').padEnd(14)} ${c.summary}`),
    '',
    'examples:',
    ...cmds.flatMap((c) => c.examples.slice(0, 1).map((e) => `  ${e}`))
  ].join('\n')
}
