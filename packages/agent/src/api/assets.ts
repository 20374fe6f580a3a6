import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'

/** The console page's third-party files, served by the agent itself (nothing fetched from outside). */
const FILES: Readonly<Record<string, { module: string, type: string }>> = {
  '/assets/xterm.js': { module: '@xterm/xterm/lib/xterm.js', type: 'text/javascript; charset=utf-8' },
  '/assets/xterm.css': { module: '@xterm/xterm/css/xterm.css', type: 'text/css; charset=utf-8' },
  '/assets/uplot.js': { module: 'uplot/dist/uPlot.iife.min.js', type: 'text/javascript; charset=utf-8' },
  '/assets/uplot.css': { module: 'uplot/dist/uPlot.min.css', type: 'text/css; charset=utf-8' }
}
const cache = new Map<string, { body: Buffer, type: string }>()

/** A static asset of the console by its path, or undefined. */
export function asset (path: string): { body: Buffer, type: string } | undefined {
  const file = FILES[path]
  if (file === undefined) return undefined
  let hit = cache.get(path)
  if (hit === undefined) {
    hit = { body: readFileSync(createRequire(import.meta.url).resolve(file.module)), type: file.type }
    cache.set(path, hit)
  }
  return hit
}
