/**
 * Typed errors. Every error difflm throws on purpose is a {@link DiffLMError} with a stable `code`;
 * abort is the exception: it rejects with the caller's `signal.reason` unchanged.
 */
import type { NativeErrorCode } from './native-types';

/** Base class of every difflm error; `code` is stable across versions, messages may improve. */
export class DiffLMError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
  }
}

/** A model folder, config key, tokenizer file or weights tensor is missing, malformed or unsupported. */
export class ModelLoadError extends DiffLMError {
  /** The file at fault (absolute path), when one is. */
  readonly file: string | undefined;
  /** The config key at fault, when one is. */
  readonly key: string | undefined;

  constructor(message: string, where: { file?: string; key?: string; cause?: unknown } = {}) {
    super('DIFFLM_MODEL_LOAD', message, { cause: where.cause });
    this.file = where.file;
    this.key = where.key;
  }
}

/** An option (or prompt) was rejected before any native call; `option` names it. */
export class InvalidOptionsError extends DiffLMError {
  readonly option: string;

  constructor(option: string, message: string) {
    super('DIFFLM_INVALID_OPTIONS', message);
    this.option = option;
  }
}

/**
 * The one message factory for option errors, so every message has the same shape:
 * `Expected ${expected} for option "${name}" but received ${actual}` (plus `: ${hint}` if given).
 */
export function invalidOption(
  name: string,
  expected: string,
  actual: string,
  hint?: string,
): InvalidOptionsError {
  const tail = hint === undefined ? '' : `: ${hint}`;
  return new InvalidOptionsError(
    name,
    `Expected ${expected} for option "${name}" but received ${actual}${tail}`,
  );
}

/** Describes a received value for {@link invalidOption}: `-1`, `"abc" (string)`, `null`, `an object`. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return `${JSON.stringify(value)} (string)`;
  if (typeof value === 'boolean') return `${value} (boolean)`;
  if (typeof value === 'bigint') return `${value}n (bigint)`;
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return 'an array';
  return `an ${typeof value}`;
}

/**
 * Used only when an operation was cancelled without a caller's signal (for example by the engine).
 * With an AbortSignal, difflm rejects with `signal.reason` itself (a DOMException "AbortError" unless
 * the caller passed their own reason).
 */
export class AbortError extends DiffLMError {
  constructor(message = 'The operation was aborted') {
    super('DIFFLM_ABORTED', message);
  }
}

/** A method was called on a disposed model, or the model was disposed while the call waited. */
export class ModelDisposedError extends DiffLMError {
  constructor(message = 'The model has been disposed') {
    super('DIFFLM_DISPOSED', message);
  }
}

/** The native addon could not be loaded; `attempts` lists each place tried and why it failed. */
export class NativeLoadError extends DiffLMError {
  readonly attempts: string[];

  constructor(attempts: string[], cause?: unknown) {
    const list = attempts.map((a) => `  - ${a}`).join('\n');
    super(
      'DIFFLM_NATIVE_LOAD',
      `Could not load the difflm native addon. Tried:\n${list}\n` +
        'Fix: run `npm rebuild difflm`, or install cmake and a C++ compiler and run it again.',
      { cause },
    );
    this.attempts = attempts;
  }
}

/** The requested device cannot be used (no CUDA in this build, no driver, no GPU). */
export class DeviceUnavailableError extends DiffLMError {
  constructor(message: string) {
    super('DIFFLM_DEVICE_UNAVAILABLE', message);
  }
}

/** Memory ran out (host or GPU); the message says how many bytes were needed and free. */
export class OutOfMemoryError extends DiffLMError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DIFFLM_OUT_OF_MEMORY', message, options);
  }
}

/** The engine failed (an internal bug, an argument lib/ should have caught). */
export class EngineError extends DiffLMError {}

/** Takes the stack frames (not the first "Error" line) of the current call, before going async. */
export function captureCallerStack(): string {
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder, captureCallerStack);
  const stack = holder.stack ?? '';
  const newline = stack.indexOf('\n');
  return newline < 0 ? '' : stack.slice(newline + 1);
}

function nativeCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

function nativeMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * Maps a native error (plain Error with a {@link NativeErrorCode}) to a typed error whose stack is
 * the caller's (from {@link captureCallerStack}), so the trace points at user code, not libuv.
 * The native error is kept as `cause`.
 */
export function fromNative(err: unknown, callerStack: string): DiffLMError {
  const code = nativeCode(err) as NativeErrorCode | undefined;
  const message = nativeMessage(err);
  let mapped: DiffLMError;
  switch (code) {
    case 'DIFFLM_MODEL_LOAD':
      mapped = new ModelLoadError(message, { cause: err });
      break;
    case 'DIFFLM_ABORTED':
      mapped = new AbortError(message);
      break;
    case 'DIFFLM_DISPOSED':
      mapped = new ModelDisposedError(message);
      break;
    case 'DIFFLM_OUT_OF_MEMORY':
      mapped = new OutOfMemoryError(message, { cause: err });
      break;
    case 'DIFFLM_INVALID_ARGUMENT':
    case 'DIFFLM_INTERNAL':
      mapped = new EngineError(code, message, { cause: err });
      break;
    default:
      mapped = new EngineError('DIFFLM_INTERNAL', message, { cause: err });
  }
  if (mapped.cause === undefined) {
    Object.defineProperty(mapped, 'cause', { value: err, configurable: true, writable: true });
  }
  mapped.stack = `${mapped.name}: ${mapped.message}${callerStack ? `\n${callerStack}` : ''}`;
  return mapped;
}
