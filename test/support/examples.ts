/**
 * The examples people copy: every `--help` example of the CLI and every `meshvirt …` line of the
 * README's shell blocks, read from where they are written at the time the test runs.
 */
import { readFileSync } from 'node:fs'
import { COMMANDS } from '../../packages/cli/src/commands/index.js'
import { topHelp } from '../../packages/cli/src/help.js'

export interface Example {
  /** As written (continuation lines joined), without its trailing comment. */
  line: string
  /** Where it is written: `README.md:58` or `meshvirt vm create --help`. */
  from: string
  /** The line's commands split at `|` and `&&`, each as shell words. */
  segments: string[][]
}

/** Shell words of one command line: quotes kept out, `|`/`&&` as their own words, `# …` dropped. */
export function shellWords (line: string): string[] {
  const words: string[] = []
  let word = ''
  let inWord = false
  let quote: '"' | '\'' | undefined
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string
    if (quote !== undefined) {
      if (c === quote) quote = undefined
      else if (c === '\\' && quote === '"' && (line[i + 1] === '"' || line[i + 1] === '\\')) word += line[++i]
      else word += c
      continue
    }
    if (c === '"' || c === '\'') { quote = c; inWord = true; continue }
    if (/\s/.test(c)) { if (inWord) words.push(word); word = ''; inWord = false; continue }
    if (c === '#' && !inWord) break
    if (c === '|' || (c === '&' && line[i + 1] === '&')) {
      if (inWord) words.push(word)
      words.push(c === '|' ? '|' : '&&')
      if (c === '&') i++
      word = ''
      inWord = false
      continue
    }
    word += c
    inWord = true
  }
  if (inWord) words.push(word)
  return words
}

/** A line's commands, split at `|` and `&&`. */
export function segmentsOf (line: string): string[][] {
  const segments: string[][] = [[]]
  for (const w of shellWords(line)) {
    if (w === '|' || w === '&&') segments.push([])
    else segments[segments.length - 1]?.push(w)
  }
  return segments.filter((s) => s.length > 0)
}

/** Drops a trailing `# comment` outside quotes. */
export function withoutComment (line: string): string {
  let quote: string | undefined
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string
    if (quote !== undefined) { if (c === quote) quote = undefined; continue }
    if (c === '"' || c === '\'') quote = c
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1] as string))) return line.slice(0, i).trimEnd()
  }
  return line.trimEnd()
}

/** Every line of the README's ```sh blocks that runs `meshvirt`, with continuation lines joined. */
export function readmeExamples (readme: string, file = 'README.md'): Example[] {
  const out: Example[] = []
  const lines = readme.split('\n')
  let inSh = false
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] as string
    if (/^```/.test(raw)) { inSh = !inSh && /^```(sh|bash|shell)\s*$/.test(raw); continue }
    if (!inSh) continue
    const at = i + 1
    let line = withoutComment(raw)
    while (line.endsWith('\\') && i + 1 < lines.length) line = line.slice(0, -1).trimEnd() + ' ' + withoutComment((lines[++i] as string).trim())
    line = line.trim()
    const segments = segmentsOf(line)
    if (segments.some((s) => s[0] === 'meshvirt')) out.push({ line, from: `${file}:${at}`, segments })
  }
  return out
}

/** Every example of `meshvirt --help` and of each command's `--help`. */
export function helpExamples (): Example[] {
  const out: Example[] = []
  const top = topHelp(COMMANDS).split('\nexamples:\n')[1] ?? ''
  for (const l of top.split('\n')) if (l.trim() !== '') out.push(example(l.trim(), 'meshvirt --help'))
  for (const c of COMMANDS) {
    // Continuation lines of one example are written as separate strings ending in a backslash.
    let pending = ''
    for (const e of c.examples) {
      const line = withoutComment(e.replace(/\\\s*\n\s*/g, ' '))
      if (line.endsWith('\\')) { pending += line.slice(0, -1).trimEnd() + ' '; continue }
      out.push(example((pending + line.trim()).trim(), `meshvirt ${c.path.join(' ')} --help`))
      pending = ''
    }
  }
  return out
}

export function allExamples (readmePath: string): Example[] {
  return [...helpExamples(), ...readmeExamples(readFileSync(readmePath, 'utf8'))]
}

function example (line: string, from: string): Example {
  const clean = withoutComment(line)
  return { line: clean, from, segments: segmentsOf(clean) }
}
