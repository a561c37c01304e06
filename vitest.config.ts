import { defineConfig } from 'vitest/config';

// One forked process at a time: native addons are safest in forks (a crash stays in its child),
// and one model at a time keeps memory flat on small CI machines.
export default defineConfig({
  test: {
    pool: 'forks',
    maxWorkers: 1,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    include: ['test/**/*.test.ts'],
  },
});
