// ESLint: the recommended rules of ESLint and typescript-eslint, plus the
// type-aware rules that catch a promise nobody awaits or handles (a loop that
// does not own its errors). Formatting is prettier's, not ESLint's.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // bench/queue-choice is a scratch harness with its own packages (docs/queue-choice.md), not project code.
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'data/', 'bench/queue-choice/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['*.ts', '*.mjs', '*.js'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // A handler a closure calls before its variable is assigned (a server and its request handler) stays `let`.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // Making control characters from Tines visible means matching them.
      'no-control-regex': 'off',
    },
  },
  {
    // Tests read JSON answers field by field.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
