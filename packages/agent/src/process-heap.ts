/**
 * The agent process's young generation stays at V8's initial size instead of growing to 16 MiB
 * semi-spaces: an agent allocates in bursts (start-up, a placement storm) and V8 never gives a
 * grown new space back, so after start-up every agent kept ~25 MB of empty young-generation
 * pages. Measured on 11 idle agents: new space 32 → 2 MB committed, RSS 140 → 119 MB each.
 * Scavenges come more often, each over a smaller space (the cost is in docs/benchmarks.md,
 * "Lean agents"). Entry points import this before anything else: V8 reads
 * the flag when the space would grow (loading the agent's modules already grows it), and
 * --max-semi-space-size cannot be changed at run time.
 */
import { setFlagsFromString } from 'node:v8'
import { heapMode } from './heap-mode.js'

setFlagsFromString('--semi-space-growth-factor=1')
// The old generation may grow to 1.2× what survived the last full GC, not V8's dynamic 1.1–4×: an
// idle agent in an 11-host mesh kept ~48 MB of heap for ~31 MB live (message churn promoted through
// the small young generation). Measured: RSS −5 MB; more full GCs (each ~30 MB, a few ms), idle
// CPU within noise (+0.25 %-points in one run under load). While bulk data moves (image chunks),
// heap-mode.ts gives V8 its own growth back: at 1.2× those buffers cost full GC after full GC.
heapMode.leanHeap()
