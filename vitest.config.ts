import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

const src = (pkg: string, file = 'index.ts'): string =>
  fileURLToPath(new URL(`./packages/${pkg}/src/${file}`, import.meta.url))

// Tests import workspace packages from source, so `vitest` needs no build; the end-to-end
// suites that spawn the `meshvirt` binary use the built CLI (`npm test` builds first).
export default defineConfig({
  resolve: {
    alias: [
      { find: /^@meshvirt\/mesh\/polyfill$/, replacement: src('mesh', 'polyfill.ts') },
      { find: /^@meshvirt\/agent\/polyfill$/, replacement: src('agent', 'polyfill.ts') },
      { find: /^@meshvirt\/(proto|placement|mesh|hypervisor|agent)$/, replacement: fileURLToPath(new URL('./packages/$1/src/index.ts', import.meta.url)) }
    ]
  },
  test: {
    setupFiles: [src('mesh', 'polyfill.ts')],
    include: ['packages/*/test/**/*.spec.ts', 'test/**/*.spec.ts'],
    pool: 'forks',
    // 2 cores here: real QEMU guests under TCG are CPU-bound, so at most two files at once.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000
  }
})
