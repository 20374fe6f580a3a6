import type { Benchmark } from './harness.js'

/** Every benchmark, in the order `npm run bench` runs them. Each issue adds its own. */
export const BENCHMARKS: Benchmark[] = []
