// ESLint (flat config) with typescript-eslint: the recommended rules, plus the type-aware
// ones that catch what this codebase can least afford (a promise nobody awaits or catches
// on the hot path, a promise passed where a callback is expected). Formatting is Prettier's
// job (npm run format), import direction dependency-cruiser's (npm run lint:deps).
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'dashboards/**', 'test-artifacts/**'] },
  { files: ['*.js', '*.cjs'], languageOptions: { sourceType: 'commonjs' } },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
      globals: globals.node,
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      eqeqeq: ['error', 'always'],
      'no-console': 'error',
    },
  },
  {
    // Tests and the bench talk to people on the terminal, and use jest's globals.
    files: ['test/**/*.ts'],
    languageOptions: { globals: { ...globals.node, ...globals.jest } },
    rules: { 'no-console': 'off', 'no-useless-assignment': 'off' },
  },
  {
    // The explorer page runs in the browser (bundled by scripts/build-explorer.mjs).
    files: ['web/**/*.ts'],
    languageOptions: { globals: globals.browser },
  },
  {
    files: ['scripts/**/*.mjs', '*.mjs', '*.js', '*.cjs'],
    languageOptions: { globals: globals.node },
    rules: { 'no-console': 'off' },
  },
);
