import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { InvalidOptionsError } from '../../lib/errors';
import {
  GENERATE_DEFAULTS,
  validateGenerateOptions,
  validateLoadOptions,
  type GenerateContext,
  type GenerateOptions,
} from '../../lib/options';

const ctx: GenerateContext = { promptLength: 10, maxSequenceLength: 4096, decoding: 'masked' };

function errorOf(fn: () => unknown): InvalidOptionsError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidOptionsError);
    return err as InvalidOptionsError;
  }
  throw new Error('expected an InvalidOptionsError');
}

const gen =
  (options: unknown, c = ctx) =>
  () =>
    validateGenerateOptions(options as GenerateOptions, c);

describe('validateGenerateOptions', () => {
  it('applies the defaults (steps and blockLength follow genLength)', () => {
    expect(validateGenerateOptions(undefined, ctx)).toEqual({
      genLength: 128,
      topK: 0,
      topP: 1,
      steps: 128,
      blockLength: 128,
      temperature: 0,
      remasking: 'low_confidence',
      cfgScale: 0,
      seed: 0,
      logitsEosInf: false,
      confidenceEosEotInf: false,
      cache: 'none',
      parallel: { mode: 0, threshold: 0.9, factor: 1 },
      stopAtEos: true,
      alg: 'entropy',
      algTemp: 0,
      eps: 0.001,
      threshold: 0.9,
      signal: undefined,
      onStep: undefined,
    });
    expect(GENERATE_DEFAULTS.genLength).toBe(128);
    const r = validateGenerateOptions({ genLength: 64 }, ctx);
    expect([r.steps, r.blockLength]).toEqual([64, 64]);
  });

  it('treats undefined values as unset', () => {
    const r = validateGenerateOptions(
      { genLength: undefined, steps: undefined, seed: undefined },
      ctx,
    );
    expect([r.genLength, r.steps, r.seed]).toEqual([128, 128, 0]);
  });

  it('keeps valid values, including more steps than tokens', () => {
    const signal = new AbortController().signal;
    const onStep = () => undefined;
    const r = validateGenerateOptions(
      {
        genLength: 64,
        steps: 256,
        blockLength: 16,
        temperature: 0.7,
        remasking: 'random',
        cfgScale: 0.5,
        seed: 2 ** 53 - 1,
        logitsEosInf: true,
        confidenceEosEotInf: true,
        signal,
        onStep,
      },
      ctx,
    );
    expect(r).toMatchObject({ genLength: 64, steps: 256, blockLength: 16, remasking: 'random' });
    expect(r.signal).toBe(signal);
    expect(r.onStep).toBe(onStep);
  });

  it.each([
    [{ genLength: -1 }, 'Expected a positive integer for option "genLength" but received -1'],
    [{ genLength: 0 }, 'Expected a positive integer for option "genLength" but received 0'],
    [{ genLength: 1.5 }, 'Expected a positive integer for option "genLength" but received 1.5'],
    [{ genLength: NaN }, 'Expected a positive integer for option "genLength" but received NaN'],
    [
      { genLength: '64' },
      'Expected a positive integer for option "genLength" but received "64" (string)',
    ],
    [{ steps: null }, 'Expected a positive integer for option "steps" but received null'],
    [
      { blockLength: Infinity },
      'Expected a positive integer for option "blockLength" but received Infinity',
    ],
    [
      { temperature: -0.5 },
      'Expected a finite number >= 0 for option "temperature" but received -0.5',
    ],
    [
      { temperature: NaN },
      'Expected a finite number >= 0 for option "temperature" but received NaN',
    ],
    [
      { cfgScale: '1' },
      'Expected a finite number >= 0 for option "cfgScale" but received "1" (string)',
    ],
    [{ seed: -1 }, 'Expected an integer in [0, 2^53) for option "seed" but received -1'],
    [{ seed: 0.5 }, 'Expected an integer in [0, 2^53) for option "seed" but received 0.5'],
    [
      { seed: 2 ** 53 },
      'Expected an integer in [0, 2^53) for option "seed" but received 9007199254740992',
    ],
    [
      { remasking: 'high_confidence' },
      'Expected one of "low_confidence", "random" for option "remasking" but received "high_confidence" (string)',
    ],
    [{ logitsEosInf: 1 }, 'Expected a boolean for option "logitsEosInf" but received 1'],
    [
      { confidenceEosEotInf: 'yes' },
      'Expected a boolean for option "confidenceEosEotInf" but received "yes" (string)',
    ],
    [{ signal: {} }, 'Expected an AbortSignal for option "signal" but received an object'],
    [{ onStep: 'log' }, 'Expected a function for option "onStep" but received "log" (string)'],
  ])('rejects %o', (options, message) => {
    const err = errorOf(gen(options));
    expect(err.message).toBe(message);
    expect(err.code).toBe('DIFFLM_INVALID_OPTIONS');
    expect(err.option).toBe(Object.keys(options)[0]);
  });

  it('rejects a non-object', () => {
    expect(errorOf(gen(5)).message).toBe(
      'Expected an options object for option "options" but received 5',
    );
    expect(errorOf(gen([])).message).toBe(
      'Expected an options object for option "options" but received an array',
    );
  });

  it('takes the cache modes and parallel decoding rules', () => {
    expect(validateGenerateOptions({ cache: 'dual' }, ctx).cache).toBe('dual');
    expect(validateGenerateOptions({ parallel: { threshold: 0.9 } }, ctx).parallel).toEqual({
      mode: 1,
      threshold: 0.9,
      factor: 1,
    });
    expect(validateGenerateOptions({ parallel: { factor: 2 } }, ctx).parallel.mode).toBe(2);
    // With parallel decoding steps is not used, so it need not divide into blocks.
    const r = validateGenerateOptions(
      { genLength: 96, blockLength: 32, steps: 128, parallel: { threshold: 0.5 } },
      ctx,
    );
    expect(r.parallel.threshold).toBe(0.5);
    expect(errorOf(gen({ genLength: 96, blockLength: 32, steps: 128 })).option).toBe('steps');
  });

  it('rejects bad cache and parallel options, naming them', () => {
    expect(errorOf(gen({ cache: 'full' })).option).toBe('cache');
    expect(errorOf(gen({ cache: 'prefix', cfgScale: 1 })).message).toBe(
      "Expected 'none' when cfgScale > 0 for option \"cache\" but received 'prefix': " +
        'classifier-free guidance is not implemented with a KV cache',
    );
    for (const bad of [0.9, {}, { threshold: 0.9, factor: 1 }, { steps: 2 }, null]) {
      expect(errorOf(gen({ parallel: bad })).option).toBe('parallel');
    }
    for (const t of [-0.1, 1.01, Number.NaN, '0.9']) {
      expect(errorOf(gen({ parallel: { threshold: t } })).option).toBe('parallel.threshold');
    }
    for (const f of [0, -1, Infinity]) {
      expect(errorOf(gen({ parallel: { factor: f } })).option).toBe('parallel.factor');
    }
  });

  it('keeps options to one way of decoding', () => {
    const ar: GenerateContext = { ...ctx, decoding: 'autoregressive' };
    expect(errorOf(gen({ cache: 'dual' }, ar)).option).toBe('cache');
    expect(errorOf(gen({ parallel: { threshold: 0.9 } }, ar)).option).toBe('parallel');
    expect(validateGenerateOptions({ stopAtEos: false }, ar).stopAtEos).toBe(false);
    expect(errorOf(gen({ stopAtEos: false })).message).toContain(
      'masked diffusion generates exactly genLength tokens',
    );
  });

  it('rejects unknown keys, naming them', () => {
    const err = errorOf(gen({ gen_length: 64 }));
    expect(err.option).toBe('gen_length');
    expect(err.message).toBe(
      'Expected a known option (one of genLength, steps, blockLength, temperature, topK, topP, remasking, ' +
        'cfgScale, seed, logitsEosInf, confidenceEosEotInf, cache, parallel, stopAtEos, alg, ' +
        'algTemp, eps, threshold, signal, onStep) for option "gen_length" ' +
        'but received an unknown option name',
    );
  });

  it('requires blockLength to divide genLength', () => {
    const err = errorOf(gen({ genLength: 128, blockLength: 48 }));
    expect(err.option).toBe('blockLength');
    expect(err.message).toBe(
      'Expected a divisor of genLength (128) for option "blockLength" but received 48',
    );
    expect(errorOf(gen({ genLength: 64, blockLength: 128 })).message).toBe(
      'Expected a divisor of genLength (64) for option "blockLength" but received 128',
    );
  });

  it('requires steps to be a multiple of the number of blocks', () => {
    const err = errorOf(gen({ genLength: 128, blockLength: 32, steps: 30 }));
    expect(err.option).toBe('steps');
    expect(err.message).toBe(
      'Expected a multiple of the number of blocks (4 = genLength 128 / blockLength 32) ' +
        'for option "steps" but received 30',
    );
    expect(() =>
      validateGenerateOptions({ genLength: 128, blockLength: 32, steps: 4 }, ctx),
    ).not.toThrow();
    expect(errorOf(gen({ genLength: 128, blockLength: 32, steps: 2 })).option).toBe('steps');
  });

  it('requires prompt + genLength to fit maxSequenceLength, naming both numbers', () => {
    const c: GenerateContext = { promptLength: 100, maxSequenceLength: 128, decoding: 'masked' };
    expect(() => validateGenerateOptions({ genLength: 28 }, c)).not.toThrow();
    const err = errorOf(gen({ genLength: 32 }, c));
    expect(err.option).toBe('genLength');
    expect(err.message).toBe(
      'Expected at most 28 (maxSequenceLength 128 minus 100 prompt tokens) for option "genLength" but received 32',
    );
    expect(
      errorOf(gen({ genLength: 8 }, { ...ctx, promptLength: 200, maxSequenceLength: 128 })).message,
    ).toBe(
      'Expected at most 0 (maxSequenceLength 128 minus 200 prompt tokens) for option "genLength" but received 8',
    );
  });
});

describe('validateLoadOptions', () => {
  it('defaults to auto and every core', () => {
    expect(validateLoadOptions(undefined)).toEqual({
      device: 'auto',
      threads: availableParallelism(),
    });
    expect(validateLoadOptions({ device: 'cpu', threads: 3 })).toEqual({
      device: 'cpu',
      threads: 3,
    });
  });

  it('accepts cuda (whether a GPU exists is checked at load)', () => {
    expect(validateLoadOptions({ device: 'cuda', threads: 1 })).toEqual({
      device: 'cuda',
      threads: 1,
    });
  });

  it.each([
    [
      { device: 'gpu' },
      'Expected one of "cpu", "cuda", "auto" for option "device" but received "gpu" (string)',
    ],
    [{ threads: 0 }, 'Expected a positive integer for option "threads" but received 0'],
    [{ threads: 2.5 }, 'Expected a positive integer for option "threads" but received 2.5'],
    [
      { dtype: 'bf16' },
      'Expected a known option (one of device, threads) for option "dtype" but received an unknown option name',
    ],
  ])('rejects %o', (options, message) => {
    expect(errorOf(() => validateLoadOptions(options as never)).message).toBe(message);
  });
});

describe('options by way of decoding', () => {
  const ar: GenerateContext = {
    promptLength: 10,
    maxSequenceLength: 256,
    decoding: 'autoregressive',
  };

  it('takes top-k and top-p for autoregressive models', () => {
    const r = validateGenerateOptions({ genLength: 16, topK: 40, topP: 0.9, temperature: 0.8 }, ar);
    expect([r.genLength, r.topK, r.topP, r.temperature]).toEqual([16, 40, 0.9, 0.8]);
  });

  it.each([
    ['steps', 8],
    ['blockLength', 8],
    ['remasking', 'random'],
    ['cfgScale', 1],
    ['logitsEosInf', true],
    ['confidenceEosEotInf', true],
  ])('rejects the masked-diffusion option %s for autoregressive models', (key, value) => {
    expect(errorOf(gen({ genLength: 16, [key]: value }, ar)).message).toBe(
      `Expected no value for option "${key}" but received ${JSON.stringify(value)}: this model ` +
        'decodes left to right (autoregressive); masked-diffusion options do not apply',
    );
  });

  it('rejects top-k/top-p for masked models, and topP outside (0, 1]', () => {
    expect(errorOf(gen({ topK: 5 })).message).toBe(
      'Expected no value for option "topK" but received 5: top-k/top-p filtering is implemented ' +
        "for Dream's and left-to-right decoding",
    );
    expect(errorOf(gen({ topP: 0 }, ar)).message).toBe(
      'Expected a number in (0, 1] for option "topP" but received 0',
    );
  });
});

describe("options of Dream's sampler", () => {
  const dream: GenerateContext = { promptLength: 10, maxSequenceLength: 256, decoding: 'dream' };

  it('takes alg, algTemp, eps, top-k and top-p, and steps that do not divide genLength', () => {
    const r = validateGenerateOptions(
      { genLength: 20, steps: 7, alg: 'topk_margin', algTemp: 0.5, eps: 0.01, topK: 5, topP: 0.9 },
      dream,
    );
    expect([r.steps, r.alg, r.algTemp, r.eps, r.topK, r.topP]).toEqual([
      7,
      'topk_margin',
      0.5,
      0.01,
      5,
      0.9,
    ]);
    expect(r.blockLength).toBe(20); // one block: Dream's sampler has none
  });

  it('takes blocks with a cache only (Fast-dLLM block decoding), checking their shape', () => {
    const r = validateGenerateOptions({ genLength: 16, blockLength: 8, cache: 'dual' }, dream);
    expect([r.blockLength, r.cache]).toEqual([8, 'dual']);
    expect(errorOf(gen({ genLength: 16, blockLength: 8 }, dream)).message).toBe(
      'Expected genLength (16) when cache is \'none\' for option "blockLength" but received 8: ' +
        "Dream decodes in blocks only with a KV cache (cache: 'prefix' or 'dual')",
    );
    expect(
      errorOf(gen({ genLength: 16, blockLength: 8, steps: 5, cache: 'prefix' }, dream)).option,
    ).toBe('steps');
  });

  it.each([
    ['remasking', 'random'],
    ['cfgScale', 1],
    ['logitsEosInf', true],
    ['confidenceEosEotInf', true],
    ['parallel', { threshold: 0.9 }],
  ])("rejects LLaDA's option %s", (key, value) => {
    expect(errorOf(gen({ genLength: 16, [key]: value }, dream)).message).toBe(
      `Expected no value for option "${key}" but received ${JSON.stringify(value)}: this is an ` +
        "option of LLaDA's sampler; Dream models use Dream's",
    );
  });

  it("rejects Dream's options for LLaDA and autoregressive models", () => {
    expect(errorOf(gen({ alg: 'entropy' })).message).toBe(
      'Expected no value for option "alg" but received "entropy": this is an option of ' +
        "Dream's sampler; this model is decoded as LLaDA",
    );
    const ar: GenerateContext = { ...dream, decoding: 'autoregressive' };
    expect(errorOf(gen({ eps: 0.01 }, ar)).option).toBe('eps');
  });

  it('rejects bad values, naming the option', () => {
    expect(errorOf(gen({ alg: 'greedy' }, dream)).option).toBe('alg');
    expect(errorOf(gen({ algTemp: -1 }, dream)).option).toBe('algTemp');
    expect(errorOf(gen({ eps: 0 }, dream)).message).toBe(
      'Expected a number in (0, 1) for option "eps" but received 0',
    );
    expect(errorOf(gen({ eps: 1 }, dream)).option).toBe('eps');
    expect(errorOf(gen({ stopAtEos: true }, dream)).option).toBe('stopAtEos');
    expect(errorOf(gen({ threshold: 1.5, alg: 'confidence_threshold' }, dream)).message).toBe(
      'Expected a number in [0, 1] for option "threshold" but received 1.5',
    );
    expect(errorOf(gen({ threshold: 0.5 }, dream)).message).toBe(
      'Expected no value for option "threshold" but received 0.5: it applies to alg ' +
        "'confidence_threshold' only (alg is 'entropy')",
    );
    const ct = validateGenerateOptions({ alg: 'confidence_threshold', threshold: 0.5 }, dream);
    expect([ct.alg, ct.threshold]).toEqual(['confidence_threshold', 0.5]);
    expect(errorOf(gen({ threshold: 0.9 })).option).toBe('threshold'); // LLaDA: parallel.threshold
  });
});
