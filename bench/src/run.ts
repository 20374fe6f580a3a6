/**
 * `npm run bench -- [NAME…] [--quick]`: runs the named benchmarks (all when none is named),
 * prints each one's table and writes bench/results/NAME.json.
 */
import '@meshvirt/mesh/polyfill'
import { describeResult, formatTable, writeResult, type Benchmark } from './harness.js'
import { BENCHMARKS } from './registry.js'

async function main (argv: string[]): Promise<number> {
  const quick = argv.includes('--quick')
  const names = argv.filter((a) => !a.startsWith('--'))
  if (argv.includes('--help')) {
    console.log('usage: npm run bench -- [NAME…] [--quick]\n\nbenchmarks:\n' +
      BENCHMARKS.map((b) => `  ${b.name.padEnd(22)} ${b.description}`).join('\n'))
    return 0
  }
  const unknown = names.filter((n) => !BENCHMARKS.some((b) => b.name === n))
  if (unknown.length > 0) {
    console.error(`unknown benchmark ${unknown.join(', ')}; known: ${BENCHMARKS.map((b) => b.name).join(', ')}`)
    return 2
  }
  const selected: Benchmark[] = names.length === 0 ? BENCHMARKS : BENCHMARKS.filter((b) => names.includes(b.name))
  for (const bench of selected) {
    console.log(`\n▶ ${bench.name}: ${bench.description}`)
    const out = await bench.run({ quick, log: (line) => console.log(`  ${line}`) })
    const result = describeResult(bench, out)
    console.log(formatTable(result))
    console.log(`→ ${writeResult(result)}`)
  }
  return 0
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code }, (err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
