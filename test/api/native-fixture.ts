/**
 * The API suites need the native addon and the committed fixture. Missing either is a failure,
 * never a silent skip: README's test command builds the addon before running them.
 */
import { existsSync, readFileSync } from 'node:fs';
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

/** Relative L2 error ||a - b|| / ||b||; NaN anywhere in a gives Infinity (never passes). */
export function relL2(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    const d = a[i]! - b[i]!;
    if (Number.isNaN(d)) return Infinity;
    num += d * d;
    den += b[i]! * b[i]!;
  }
  return Math.sqrt(num / den);
}

/** A little-endian float32 file of a fixture folder. */
export function readFloat32(file: string): Float32Array {
  const raw = readFileSync(file);
  return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
}
