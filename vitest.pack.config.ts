import { defineConfig } from 'vitest/config';

// The packaging test (npm pack, install into a temporary project, run): one file, run by
// `npm run test:pack` after `npm run prebuild`, apart from the unit and API suites.
export default defineConfig({
  test: {
    pool: 'forks',
    maxWorkers: 1,
    testTimeout: 600_000,
    hookTimeout: 600_000,
    include: ['test/pack/**/*.pack.ts'],
  },
});
