// ESLint for the web app: JavaScript's and typescript-eslint's recommended rules everywhere, the
// rules of hooks on the React code.
//
// Not type-aware: `npm run typecheck` (TypeScript 7) checks types. typescript-eslint only parses,
// with the TypeScript 6 API that the package named `typescript` provides (package.json aliases it
// to `@typescript/typescript6`: TypeScript 7, aliased `typescript7`, has no JavaScript API yet).
//
// eslint-plugin-react-hooks stays on 5.x (its two classic rules), allowed ESLint 10 by an
// override in package.json: 6.x and later depend on Babel, whose browserslist data
// (caniuse-lite) is CC-BY-4.0, outside the licence allow-list in ../deny.toml.
import js from '@eslint/js';
import reactHooks from 'eslint-plugin-react-hooks';
import { defineConfig, globalIgnores } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig([
  globalIgnores(['dist/', 'e2e/out/']),
  {
    extends: [js.configs.recommended, tseslint.configs.recommended],
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },
  {
    files: ['src/**/*.{ts,tsx}'],
    extends: [reactHooks.configs['recommended-latest']],
    languageOptions: { globals: globals.browser },
  },
  {
    files: ['public/theme.js'],
    languageOptions: { globals: globals.browser },
  },
  {
    files: ['public/sw.js'],
    languageOptions: { globals: globals.serviceworker },
  },
  {
    files: ['eslint.config.js', 'vite.config.ts', 'scripts/**/*.mjs'],
    languageOptions: { globals: globals.node },
  },
  {
    // Node.js, and the browser in the functions it hands to `page.evaluate`.
    files: ['e2e/**/*.mjs'],
    languageOptions: { globals: { ...globals.node, ...globals.browser } },
  },
]);
