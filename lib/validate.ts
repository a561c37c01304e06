/**
 * Small option checks (the role of sharp's `is.mjs`). Each returns the value typed, or throws
 * through the one factory {@link invalidOption}, so every message has the same shape.
 */
import { describeValue, invalidOption } from './errors';

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Options must be an object or undefined; unknown keys are errors (they are usually typos). */
export function checkOptionsObject(
  value: unknown,
  known: readonly string[],
  what = 'options',
): Record<string, unknown> {
  if (value === undefined) return {};
  if (!isPlainObject(value)) throw invalidOption(what, 'an options object', describeValue(value));
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      throw invalidOption(
        key,
        `a known option (one of ${known.join(', ')})`,
        'an unknown option name',
      );
    }
  }
  return value;
}

export function positiveInt(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw invalidOption(name, 'a positive integer', describeValue(value));
  }
  return value;
}

export function nonNegativeInt(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw invalidOption(name, 'an integer in [0, 2^53)', describeValue(value));
  }
  return value;
}

export function nonNegativeNumber(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw invalidOption(name, 'a finite number >= 0', describeValue(value));
  }
  return value;
}

export function bool(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw invalidOption(name, 'a boolean', describeValue(value));
  return value;
}

/** A key of a lookup table (string unions are validated against the table that maps them). */
export function oneOf<T extends string>(
  name: string,
  value: unknown,
  table: Readonly<Record<T, unknown>>,
): T {
  const keys = Object.keys(table);
  if (typeof value !== 'string' || !keys.includes(value)) {
    const expected = `one of ${keys.map((k) => JSON.stringify(k)).join(', ')}`;
    throw invalidOption(name, expected, describeValue(value));
  }
  return value as T;
}

export function func<F extends (...args: never[]) => unknown>(name: string, value: unknown): F {
  if (typeof value !== 'function') throw invalidOption(name, 'a function', describeValue(value));
  return value as F;
}

export function abortSignal(name: string, value: unknown): AbortSignal {
  if (!(value instanceof AbortSignal)) {
    throw invalidOption(name, 'an AbortSignal', describeValue(value));
  }
  return value;
}
