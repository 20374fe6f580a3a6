import type { LogLevel } from '../config/agent-config.js'

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 }

export interface Logger {
  debug: (msg: string, fields?: Record<string, unknown>) => void
  info: (msg: string, fields?: Record<string, unknown>) => void
  warn: (msg: string, fields?: Record<string, unknown>) => void
  error: (msg: string, fields?: Record<string, unknown>) => void
  /** A logger for a sub-component (`meshvirt:agent` → `meshvirt:agent:control`) with extra fields on every line. */
  child: (component: string, fields?: Record<string, unknown>) => Logger
}

export interface LoggerInit {
  level?: LogLevel
  component?: string
  fields?: Record<string, unknown>
  write?: (line: string) => void
  now?: () => Date
}

/** Structured JSON logs, one object per line: time, level, component, msg, then the fields (host, vm, …). */
export function createLogger (init: LoggerInit = {}): Logger {
  const level = init.level ?? 'info'
  const component = init.component ?? 'meshvirt'
  const base = init.fields ?? {}
  const write = init.write ?? ((line: string) => { process.stderr.write(line + '\n') })
  const now = init.now ?? (() => new Date())
  const emit = (lvl: LogLevel) => (msg: string, fields: Record<string, unknown> = {}): void => {
    if (ORDER[lvl] < ORDER[level]) return
    write(JSON.stringify({ time: now().toISOString(), level: lvl, component, msg, ...base, ...fields }))
  }
  return {
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    child: (sub, fields = {}) => createLogger({ ...init, level, component: `${component}:${sub}`, fields: { ...base, ...fields } })
  }
}

export const silentLogger: Logger = createLogger({ write: () => {} })
