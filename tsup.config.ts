import { defineConfig } from 'tsup';

const common = {
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  splitting: false,
  // Replaces import.meta.url in the CJS build, so lib/native.ts finds the package root from both.
  shims: true,
} as const;

export default defineConfig([
  {
    ...common,
    entry: { index: 'lib/index.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    // Cleans dist/ but the CLI, which the second config builds at the same time.
    clean: ['!cli.*'],
  },
  {
    ...common,
    entry: { cli: 'lib/cli.ts' },
    format: ['esm'],
    banner: { js: '#!/usr/bin/env node' },
  },
]);
