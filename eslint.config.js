// ESLint for lib/, test/ and bench/ (flat config): the recommended JavaScript and TypeScript rules.
// Run by `npm run lint` and by CI (.ci/run).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'build/', 'build-*/', 'vendor/llama.cpp/', 'vendor/.cache/', 'node_modules/', 'bench/peers/', 'bench/.compare-worker.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.mjs', '**/*.js'],
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: 'module',
      globals: {
        process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly',
        setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', queueMicrotask: 'readonly',
        URL: 'readonly', TextDecoder: 'readonly', TextEncoder: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly',
        structuredClone: 'readonly', performance: 'readonly', fetch: 'readonly',
      },
    },
    rules: {
      // unused arguments are often part of a callback's signature: name them _x
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    // tests read JSON bodies and CLI output whose shape is what they assert: `any` there is the
    // honest type (the library and the server keep the rule)
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
