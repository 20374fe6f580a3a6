// Lint: neostandard (JavaScript Standard Style for TypeScript), the style this code was written in
// from the start: no semicolons, single quotes, a space before a function's parentheses. Two rules
// are bent to habits the code has on purpose:
// - long object literals wrap where they read best, several properties to a line (wiring in
//   agent.ts, test fixtures), so a property per line or all on one is not required;
// - `void promise` marks a promise deliberately not awaited (its errors are handled inside).
import neostandard from 'neostandard'

export default [
  ...neostandard({
    ts: true,
    ignores: ['**/dist/**', 'packages/proto/gen/**', 'node_modules/**', '.cache/**', 'test-results/**', 'bench/results/**']
  }),
  {
    files: ['**/*.ts'],
    rules: {
      '@stylistic/object-property-newline': 'off',
      'no-void': ['error', { allowAsStatement: true }],
      // `for await (const _ of stream)` drains a stream: a leading underscore names what is unused on purpose.
      '@typescript-eslint/no-unused-vars': ['error', { args: 'none', caughtErrors: 'none', ignoreRestSiblings: true, varsIgnorePattern: '^_' }]
    }
  }
]
