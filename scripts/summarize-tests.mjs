#!/usr/bin/env node
// Reads vitest's JSON report and prints the plain closing line CI looks for:
//   "N passed, N failed", last. Skipped tests are never counted as passed: when there are any,
//   a line before it says how many and which files (each suite prints why it skipped itself).
// A report with no executed test prints "0 passed, 0 failed" and exits 1, so a run that
// executed nothing can never pass for a green one.
import { readFileSync, existsSync } from 'node:fs'

const path = process.argv[2] ?? 'test-results/vitest.json'
if (!existsSync(path)) {
  console.log('0 passed, 1 failed')
  console.error(`no test report at ${path}: the test runner did not finish`)
  process.exit(1)
}
const report = JSON.parse(readFileSync(path, 'utf8'))
const passed = report.numPassedTests ?? 0
// A file that failed without a failing test (it did not load, a hook threw) counts as one failure.
const brokenFiles = (report.testResults ?? []).filter((f) => f.status === 'failed' && !(f.assertionResults ?? []).some((a) => a.status === 'failed')).length
const failed = (report.numFailedTests ?? 0) + brokenFiles
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0)
if (skipped > 0) {
  const files = (report.testResults ?? []).filter((f) => (f.assertionResults ?? []).some((a) => a.status === 'pending' || a.status === 'skipped' || a.status === 'todo'))
    .map((f) => f.name.replace(`${process.cwd()}/`, ''))
  console.log(`${skipped} skipped (not counted as passed): ${files.join(', ')}`)
}
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed > 0 || passed === 0 ? 1 : 0)
