// Loads the native addon for the benchmarks (the same file lib/ loads).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export function loadNativeForBench() {
  return require('node-gyp-build')(new URL('..', import.meta.url).pathname);
}
