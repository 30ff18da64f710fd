import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';
import reactHooks from 'eslint-plugin-react-hooks';

/**
 * Import boundaries (docs/architecture.md, "Layers"), checked with ESLint's built-in
 * no-restricted-imports. Layer order, lowest first; a package's src imports only the layers
 * below it (and itself):
 *
 *   protocol → core, model → worker, sim → swarm → apps (coordinator, web)
 *
 * test-support is test-only: it may import anything, and no src may import it. The patterns of
 * one file's rule are disjoint, so one bad import gives one error.
 */
const layers = {
  protocol: [],
  core: ['protocol'],
  model: ['protocol'],
  worker: ['protocol', 'core', 'model'],
  sim: ['protocol', 'core'],
  swarm: ['protocol', 'core', 'model', 'worker'],
};
const apps = ['coordinator', 'web'];
const layerOrder = 'protocol → core, model → worker, sim → swarm → apps';

/** A relative specifier that climbs out of a directory and into another one's `test/support`. */
const testSupportRelative = {
  regex: String.raw`^(?:\.\./)+(?:[^./][^/]*/)+test/support(?:/|$)`,
  message:
    "test support shared across packages comes from '@swarmgrad/test-support' (packages/test-support), not by a relative path into another package's test/support.",
};
/**
 * A relative specifier that climbs out of its package and into another one's src/, test/ or
 * bin/: cross-package imports go by package name, so the layer rules can see them.
 * `exceptApps`: leave `…/apps/…` to the packages-import-apps pattern.
 */
const crossPackageRelative = (exceptApps) => ({
  regex: String.raw`^(?:\.\./)+(?!(?:[^/]+/)*test/support(?:/|$))${
    exceptApps ? String.raw`(?!(?:[^/]+/)*apps/)` : ''
  }(?:[^./][^/]*/)+(?:src|test|bin)(?:/|$)`,
  message:
    "a relative import into another workspace package: import it by name ('@swarmgrad/…') so the layer rules (docs/architecture.md) apply.",
});
const packageImportsApp = {
  regex: String.raw`^(?:@swarmgrad/(?:${apps.join('|')})(?:/|$)|\.\.?/(?:.*/)?apps(?:/|$))`,
  message:
    'a package must not import an app (apps/*): move what both need into a package (types into @swarmgrad/protocol).',
};
const wrongLayer = (name) => ({
  regex: String.raw`^@swarmgrad/(?!(?:${[name, ...layers[name], ...apps].join('|')})(?:/|$))`,
  message: `@swarmgrad/${name} may import only ${
    layers[name].map((l) => `@swarmgrad/${l}`).join(', ') || 'no workspace package'
  } (layer order: ${layerOrder}; test support only in tests).`,
});
const appImportsTestSupport = {
  regex: String.raw`^@swarmgrad/test-support(?:/|$)`,
  message: '@swarmgrad/test-support is for tests only: no src may import it.',
};
const appImportsApp = (name) => ({
  regex: String.raw`^@swarmgrad/(?:${apps.filter((a) => a !== name).join('|')})(?:/|$)`,
  message: 'an app must not import another app: share through a package.',
});
const restrict = (...patterns) => ({
  'no-restricted-imports': ['error', { patterns }],
});

const boundaries = [
  {
    files: ['**/*.{ts,tsx,js,mjs,cjs}'],
    rules: restrict(testSupportRelative, crossPackageRelative(false)),
  },
  ...Object.keys(layers).map((name) => ({
    files: [`packages/${name}/src/**/*.{ts,tsx,js,mjs,cjs}`],
    rules: restrict(
      packageImportsApp,
      wrongLayer(name),
      testSupportRelative,
      crossPackageRelative(true),
    ),
  })),
  ...apps.map((name) => ({
    files: [`apps/${name}/src/**/*.{ts,tsx,js,mjs,cjs}`],
    rules: restrict(
      appImportsTestSupport,
      appImportsApp(name),
      testSupportRelative,
      crossPackageRelative(false),
    ),
  })),
];

export default tseslint.config(
  {
    ignores: [
      '.scratch-sg/**',
      '**/node_modules/**',
      '**/dist/**',
      '.swarmgrad/**',
      'test-results/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node, ...globals.browser } },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    files: ['apps/web/**/*.{ts,tsx}'],
    plugins: { 'react-hooks': reactHooks },
    rules: {
      'react-hooks/rules-of-hooks': 'error',
      'react-hooks/exhaustive-deps': 'warn',
    },
  },
  ...boundaries,
);
