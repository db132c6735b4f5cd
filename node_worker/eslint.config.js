// eslint (flat config): `npm run lint`. The recommended rules of @eslint/js, none switched off, over the
// worker (src/), the emulator (emulator/), the code they share (lib/) and the tests (test/): all ES
// modules run by Node (its globals, none of a browser's).
import js from '@eslint/js'
import globals from 'globals'

export default [
  { ignores: ['node_modules/**'] }, // (eslint skips it anyway; said here for the reader)
  js.configs.recommended,
  {
    files: ['**/*.js'],
    languageOptions: {
      ecmaVersion: 2024,
      sourceType: 'module',
      globals: { ...globals.node }
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' }
  },
  {
    // The house rules for the programs (not the tests, whose describe blocks group many cases): a file
    // is one job (at most 400 lines), a function reads on one screen (at most 80).
    files: ['src/**/*.js', 'lib/**/*.js', 'emulator/**/*.js'],
    rules: {
      'max-lines': ['error', { max: 400 }],
      'max-lines-per-function': ['error', { max: 80 }]
    }
  }
]
