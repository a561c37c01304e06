/**
 * The API suites need the native addon and the committed fixture. Missing either is a failure,
 * never a silent skip: README's test command builds the addon before running them.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadNative } from '../../lib/native';

export const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
export const FIXTURE_A = join(FIXTURES, 'llada-tiny-a');

if (!existsSync(join(FIXTURE_A, 'config.json'))) {
  throw new Error(`the API tests need the fixture at ${FIXTURE_A}`);
}
// Throws NativeLoadError (listing what was tried) when the addon is not built.
loadNative();
