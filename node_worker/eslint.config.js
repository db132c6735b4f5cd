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
  }
]
