import { describe, expect, it } from 'vitest';
import {
  AbortError,
  DiffLMError,
  EngineError,
  InvalidOptionsError,
  ModelDisposedError,
  ModelLoadError,
  NativeLoadError,
  OutOfMemoryError,
  captureCallerStack,
  describeValue,
  fromNative,
  invalidOption,
} from '../../lib/errors';

const native = (code: string | undefined, message: string): Error =>
  Object.assign(new Error(message), code === undefined ? {} : { code });

describe('errors', () => {
  it('give every class its name and code', () => {
    const cases: [DiffLMError, string, string][] = [
      [new ModelLoadError('m', { file: '/f', key: 'k' }), 'ModelLoadError', 'DIFFLM_MODEL_LOAD'],
      [new InvalidOptionsError('x', 'm'), 'InvalidOptionsError', 'DIFFLM_INVALID_OPTIONS'],
      [new AbortError(), 'AbortError', 'DIFFLM_ABORTED'],
      [new ModelDisposedError(), 'ModelDisposedError', 'DIFFLM_DISPOSED'],
      [new NativeLoadError(['a']), 'NativeLoadError', 'DIFFLM_NATIVE_LOAD'],
      [new EngineError('DIFFLM_INTERNAL', 'm'), 'EngineError', 'DIFFLM_INTERNAL'],
    ];
    for (const [err, name, code] of cases) {
      expect(err).toBeInstanceOf(DiffLMError);
      expect(err).toBeInstanceOf(Error);
      expect([err.name, err.code]).toEqual([name, code]);
    }
    expect(new ModelLoadError('m', { file: '/f', key: 'k' })).toMatchObject({
      file: '/f',
      key: 'k',
    });
    expect('cause' in new ModelDisposedError()).toBe(false);
  });

  it('build option messages in one shape', () => {
    const err = invalidOption('steps', 'a positive integer', describeValue(-2));
    expect(err.option).toBe('steps');
    expect(err.message).toBe('Expected a positive integer for option "steps" but received -2');
    expect(invalidOption('device', 'one of "cpu"', '"cuda" (string)', 'not yet').message).toBe(
      'Expected one of "cpu" for option "device" but received "cuda" (string): not yet',
    );
  });

  it('describe received values', () => {
    expect([null, undefined, NaN, 3, 'a', true, 2n, () => 1, [1], {}].map(describeValue)).toEqual([
      'null',
      'undefined',
      'NaN',
      '3',
      '"a" (string)',
      'true (boolean)',
      '2n (bigint)',
      'a function',
      'an array',
      'an object',
    ]);
  });

  it('list every attempt and the fix when the addon does not load', () => {
    const err = new NativeLoadError(['/a/build/Release/*.node: not found', '/a/prebuilds: none']);
    expect(err.attempts).toHaveLength(2);
    expect(err.message).toBe(
      'Could not load the difflm native addon. Tried:\n' +
        '  - /a/build/Release/*.node: not found\n' +
        '  - /a/prebuilds: none\n' +
        'Fix: run `npm rebuild difflm`, or install cmake and a C++ compiler and run it again.',
    );
  });
});

describe('fromNative', () => {
  it.each([
    ['DIFFLM_MODEL_LOAD', ModelLoadError, 'DIFFLM_MODEL_LOAD'],
    ['DIFFLM_ABORTED', AbortError, 'DIFFLM_ABORTED'],
    ['DIFFLM_DISPOSED', ModelDisposedError, 'DIFFLM_DISPOSED'],
    ['DIFFLM_INVALID_ARGUMENT', EngineError, 'DIFFLM_INVALID_ARGUMENT'],
    ['DIFFLM_OUT_OF_MEMORY', OutOfMemoryError, 'DIFFLM_OUT_OF_MEMORY'],
    ['DIFFLM_INTERNAL', EngineError, 'DIFFLM_INTERNAL'],
    ['SOMETHING_ELSE', EngineError, 'DIFFLM_INTERNAL'],
    [undefined, EngineError, 'DIFFLM_INTERNAL'],
  ])('maps %s', (code, cls, mappedCode) => {
    const src = native(code, 'tensor model.transformer.wte: shape [3] != [272, 64]');
    const err = fromNative(src, '    at userCode (/app/main.js:1:1)');
    expect(err).toBeInstanceOf(cls);
    expect(err.code).toBe(mappedCode);
    expect(err.message).toBe('tensor model.transformer.wte: shape [3] != [272, 64]');
    expect(err.cause).toBe(src);
  });

  it("puts the caller's stack on the error", () => {
    function userFunction(): string {
      return captureCallerStack();
    }
    const stack = userFunction();
    expect(stack.split('\n')[0]).toMatch(/userFunction/);
    const err = fromNative(native('DIFFLM_INTERNAL', 'boom'), stack);
    expect(err.stack).toBe(`EngineError: boom\n${stack}`);
  });

  it('accepts non-Error values', () => {
    expect(fromNative('plain', '').message).toBe('plain');
  });
});
