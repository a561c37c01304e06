/**
 * DiffusionModel over a JavaScript fake of the native addon (helpers/fake-native.ts): queueing,
 * abort, dispose, events, streaming and error mapping, without a C++ build.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  OutOfMemoryError,
  InvalidOptionsError,
  ModelDisposedError,
  ModelLoadError,
  loadModel,
  type DiffusionModel,
  type StepEvent,
} from '../../lib/index';
import { createFakeNative, nativeError } from './helpers/fake-native';
import { SPECIAL, tinyConfig, writeTinyModel, type TinyModelFolder } from './helpers/tiny-model';

let fake: ReturnType<typeof createFakeNative>;
vi.mock('../../lib/native', () => ({ loadNative: () => fake.binding }));

let folder: TinyModelFolder;
let model: DiffusionModel;

beforeEach(async () => {
  fake = createFakeNative();
  folder = writeTinyModel();
  model = await loadModel(folder.dir, { threads: 2 });
});

afterEach(async () => {
  await model.dispose();
  folder.remove();
});

const letters = (n: number, from = 0): number[] =>
  Array.from({ length: n }, (_, i) => 65 + ((from + i) % 26));

describe('loadModel', () => {
  it('builds the engine spec from config.json and load options', () => {
    expect(fake.controls.spec).toMatchObject({ arch: 'llada', vocabSize: 272, threads: 2 });
    expect(model.config.family).toBe('llada');
    expect(model.specialTokens).toEqual({ mask: SPECIAL.mask, eos: SPECIAL.eos, eot: SPECIAL.eot });
    expect(model.tokenizer.vocabSize).toBe(262);
    expect(model.memory()).toEqual({ weightBytes: 0, workBytes: 0 });
  });

  it('names an unknown built-in model and a bad folder argument', async () => {
    await expect(loadModel('builtin:gpt5')).rejects.toThrow(
      'Expected a model folder or one of "builtin:diffusion", "builtin:ar" for option "dir" but ' +
        'received "builtin:gpt5": no such built-in model',
    );
    await expect(loadModel(42 as unknown as string)).rejects.toThrow(
      'Expected a folder path for option "dir" but received 42',
    );
  });

  it('rejects a tokenizer with more ids than the model has rows, naming tokenizer.json', async () => {
    const config = {
      ...tinyConfig(),
      vocab_size: 200,
      embedding_size: 200,
      mask_token_id: 100,
      eos_token_id: 101,
    };
    const small = writeTinyModel({ config });
    try {
      const err = await loadModel(small.dir).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ModelLoadError);
      expect((err as ModelLoadError).message).toBe(
        `${small.dir}/tokenizer.json has token ids up to 261 but the model has only 200 vocabulary ` +
          'rows (embedding_size or vocab_size in config.json)',
      );
    } finally {
      small.remove();
    }
  });

  it('maps native load errors with the caller stack', async () => {
    fake.binding.loadModel = () =>
      Promise.reject(nativeError('DIFFLM_MODEL_LOAD', 'model.safetensors: tensor "wte" missing'));
    const err = (await loadModel(folder.dir).catch((e: unknown) => e)) as ModelLoadError;
    expect(err).toBeInstanceOf(ModelLoadError);
    expect(err.message).toBe('model.safetensors: tensor "wte" missing');
    expect(err.stack).toMatch(/model\.test\.ts/);
  });
});

describe('generate', () => {
  it('returns generated ids, text, canvas and timings', async () => {
    const r = await model.generate({ inputIds: [1, 2, 3] }, { genLength: 8, seed: 0 });
    expect(r.tokens).toEqual(letters(8, 3));
    expect(r.canvas).toEqual([1, 2, 3, ...letters(8, 3)]);
    expect(r.text).toBe('DEFGHIJK');
    expect(r.promptTokens).toBe(3);
    expect(r.steps).toBe(8);
    expect(r.timings).toEqual({ forwardMs: 16, sampleMs: 8, totalMs: 25, tokensPerSecond: 320 });
  });

  it('sends the validated request with the special ids', async () => {
    await model.generate('hi', {
      genLength: 16,
      blockLength: 8,
      steps: 4,
      remasking: 'random',
      temperature: 0.5,
      cfgScale: 1,
      seed: 7,
      logitsEosInf: true,
    });
    const req = fake.controls.generateCalls[0];
    expect(req).toMatchObject({
      genLength: 16,
      blockLength: 8,
      steps: 4,
      remasking: 1,
      temperature: 0.5,
      cfgScale: 1,
      seed: 7,
      maskTokenId: SPECIAL.mask,
      eosTokenId: SPECIAL.eos,
      eotTokenId: SPECIAL.eot,
      logitsEosInf: true,
      confidenceEosEotInf: false,
    });
    expect(Array.from(req?.prompt ?? [])).toEqual([104, 105]);
    expect(req?.cancel).toBeInstanceOf(Int32Array);
  });

  it('cuts the text at the first EOS or EOT but keeps every token', async () => {
    fake.controls.tokenRule = (pos) => (pos === 4 ? SPECIAL.eot : pos === 6 ? SPECIAL.eos : 120);
    const r = await model.generate({ inputIds: [1] }, { genLength: 8 });
    expect(r.tokens).toEqual([120, 120, 120, SPECIAL.eot, 120, SPECIAL.eos, 120, 120]);
    expect(r.text).toBe('xxx');
  });

  it('tokenizes chat prompts with the template', async () => {
    const r = await model.generate(
      { messages: [{ role: 'user', content: 'Hi' }] },
      { genLength: 4 },
    );
    expect(r.canvas[0]).toBe(SPECIAL.bos);
    expect(r.promptTokens).toBe(1 + 1 + 4 + 1 + 4 + 1 + 1 + 9 + 1 + 2);
  });

  it('emits one event per step, positions relative to the generated region', async () => {
    const events: StepEvent[] = [];
    await model.generate(
      { inputIds: [1, 2] },
      { genLength: 8, blockLength: 4, steps: 4, onStep: (ev) => events.push(ev) },
    );
    expect(events.map((e) => [e.step, e.block, e.progress])).toEqual([
      [0, 0, 0.25],
      [1, 0, 0.5],
      [2, 1, 0.75],
      [3, 1, 1],
    ]);
    expect(events[0]?.committed).toEqual([
      { position: 0, token: 67 },
      { position: 1, token: 68 },
    ]);
    const m = SPECIAL.mask;
    expect(events[0]?.canvas).toEqual([67, 68, m, m, m, m, m, m]);
    expect(events[3]?.canvas).toEqual(letters(8, 2));
    expect(events[0]?.canvas).not.toBe(events[1]?.canvas);
  });

  it('rejects invalid options and prompts without calling the engine', async () => {
    await expect(model.generate('x', { genLength: -1 })).rejects.toThrow(InvalidOptionsError);
    await expect(model.generate(7 as unknown as string)).rejects.toThrow(/for option "prompt"/);
    await expect(
      model.generate({ inputIds: new Array(250).fill(1) }, { genLength: 8 }),
    ).rejects.toThrow(
      'Expected at most 6 (maxSequenceLength 256 minus 250 prompt tokens) for option "genLength" but received 8',
    );
    expect(fake.controls.generateCalls).toHaveLength(0);
  });

  it('maps engine errors, keeping the caller stack', async () => {
    fake.controls.failNext = nativeError('DIFFLM_OUT_OF_MEMORY', 'cannot allocate 2 GiB');
    const err = (await model
      .generate('x', { genLength: 4 })
      .catch((e: unknown) => e)) as OutOfMemoryError;
    expect(err).toBeInstanceOf(OutOfMemoryError);
    expect(err.code).toBe('DIFFLM_OUT_OF_MEMORY');
    expect(err.message).toBe('cannot allocate 2 GiB');
    expect(err.stack).toMatch(/model\.test\.ts/);
  });

  it('rejects with the onStep error, cancels the run, and stays usable', async () => {
    const boom = new Error('user bug');
    let calls = 0;
    const p = model.generate('x', {
      genLength: 16,
      onStep: () => {
        calls++;
        throw boom;
      },
    });
    await expect(p).rejects.toBe(boom);
    expect(calls).toBe(1);
    expect(fake.controls.generateCalls[0]?.cancel[0]).toBe(1);
    await expect(model.generate('x', { genLength: 4 })).resolves.toHaveProperty('tokens');
  });
});

describe('abort', () => {
  it('rejects at once with signal.reason when already aborted', async () => {
    const reason = new Error('mine');
    await expect(model.generate('x', { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(fake.controls.generateCalls).toHaveLength(0);
  });

  it('cancels a running generation with signal.reason unchanged', async () => {
    const controller = new AbortController();
    const p = model.generate('x', {
      genLength: 32,
      signal: controller.signal,
      onStep: (ev) => ev.step === 1 && controller.abort(),
    });
    const err = await p.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DOMException);
    expect((err as DOMException).name).toBe('AbortError');
    expect(err).toBe(controller.signal.reason);
    expect(fake.controls.generateCalls[0]?.cancel[0]).toBe(1);
    await expect(model.generate('x', { genLength: 4 })).resolves.toHaveProperty('tokens');
  });

  it('takes a queued call out of the queue', async () => {
    fake.controls.stepDelayMs = 2;
    const first = model.generate('x', { genLength: 32 });
    const controller = new AbortController();
    const second = model.generate('y', { genLength: 4, signal: controller.signal });
    const reason = new Error('changed my mind');
    setTimeout(() => controller.abort(reason), 5);
    await expect(second).rejects.toBe(reason);
    expect(fake.controls.running).toBe(1);
    await first;
    expect(fake.controls.generateCalls).toHaveLength(1);
  });

  it('cancels logits()', async () => {
    const reason = new Error('stop');
    await expect(
      model.logits({ inputIds: [1] }, { signal: AbortSignal.abort(reason) }),
    ).rejects.toBe(reason);
  });
});

describe('queue', () => {
  it('runs concurrent calls one at a time, in call order, with the same results', async () => {
    fake.controls.stepDelayMs = 1;
    const opts = (seed: number) => ({ genLength: 8, steps: 4, seed });
    const together = await Promise.all([1, 2, 3].map((s) => model.generate('ab', opts(s))));
    expect(fake.controls.maxRunning).toBe(1);
    expect(fake.controls.generateCalls.map((r) => r.seed)).toEqual([1, 2, 3]);
    const oneByOne = [];
    for (const s of [1, 2, 3]) oneByOne.push(await model.generate('ab', opts(s)));
    expect(together.map((r) => r.tokens)).toEqual(oneByOne.map((r) => r.tokens));
  });
});

describe('stream', () => {
  it('yields every event, then returns the result', async () => {
    const seen: StepEvent[] = [];
    const events: StepEvent[] = [];
    for await (const ev of model.stream('ab', { genLength: 8, onStep: (e) => seen.push(e) })) {
      events.push(ev);
    }
    expect(events).toHaveLength(8);
    expect(events).toEqual(seen);
    const it = model.stream('ab', { genLength: 4 });
    let next = await it.next();
    let count = 0;
    while (!next.done) {
      count++;
      next = await it.next();
    }
    expect(count).toBe(4);
    expect(next.value.tokens).toHaveLength(4);
  });

  it('does not lose events when the consumer is slow', async () => {
    const events: StepEvent[] = [];
    for await (const ev of model.stream('ab', { genLength: 16 })) {
      await new Promise((r) => setTimeout(r, 2));
      events.push(ev);
    }
    expect(events.map((e) => e.step)).toEqual([...Array(16).keys()]);
    expect(events.at(-1)?.progress).toBe(1);
  });

  it('cancels the run when the consumer leaves early', async () => {
    fake.controls.stepDelayMs = 1;
    for await (const ev of model.stream('ab', { genLength: 64 })) {
      if (ev.step === 2) break;
    }
    expect(fake.controls.running).toBe(0);
    expect(fake.controls.generateCalls[0]?.cancel[0]).toBe(1);
    await expect(model.generate('x', { genLength: 4 })).resolves.toHaveProperty('tokens');
  });

  it('propagates abort after the events delivered so far', async () => {
    const controller = new AbortController();
    const reason = new Error('enough');
    const steps: number[] = [];
    const run = async () => {
      for await (const ev of model.stream('ab', { genLength: 16, signal: controller.signal })) {
        steps.push(ev.step);
        if (ev.step === 3) controller.abort(reason);
      }
    };
    await expect(run()).rejects.toBe(reason);
    expect(steps.slice(0, 4)).toEqual([0, 1, 2, 3]);
  });

  it('throws bad options synchronously', () => {
    expect(() => model.stream('ab', { steps: 0 })).toThrow(
      'Expected a positive integer for option "steps" but received 0',
    );
  });
});

describe('logits', () => {
  it('returns positions × vocabulary rows', async () => {
    const out = await model.logits({ inputIds: [5, 9] });
    expect(out).toBeInstanceOf(Float32Array);
    expect(out.length).toBe(2 * 272);
    expect(out[5]).toBe(1);
    expect(out[272 + 9]).toBe(1);
  });

  it('validates its input', async () => {
    await expect(model.logits({ inputIds: [] })).rejects.toThrow(
      'Expected 1 to 256 (maxSequenceLength) token ids for option "inputIds" but received 0',
    );
    await expect(model.logits({ inputIds: [272] })).rejects.toThrow(
      'Expected a token id in [0, 272) for option "inputIds[0]" but received 272',
    );
  });
});

describe('dispose', () => {
  it('cancels the running call, rejects queued ones, then frees the engine', async () => {
    fake.controls.stepDelayMs = 2;
    const running = model.generate('x', { genLength: 64 });
    const queued = model.generate('y', { genLength: 4 });
    await new Promise((r) => setTimeout(r, 5));
    const disposed = model.dispose();
    expect(model.disposed).toBe(true);
    await expect(queued).rejects.toThrow(
      new ModelDisposedError('The model was disposed before this call started'),
    );
    await expect(running).rejects.toThrow(
      new ModelDisposedError('The model was disposed during this call'),
    );
    await disposed;
    expect(fake.controls.running).toBe(0);
    expect(fake.controls.disposeCalls).toBe(1);
    expect(model.dispose()).toBe(disposed);
    await model[Symbol.asyncDispose]();
    expect(fake.controls.disposeCalls).toBe(1);
  });

  it('makes every method fail with ModelDisposedError', async () => {
    await model.dispose();
    await expect(model.generate('x')).rejects.toBeInstanceOf(ModelDisposedError);
    await expect(model.logits({ inputIds: [1] })).rejects.toBeInstanceOf(ModelDisposedError);
    expect(() => model.stream('x')).toThrow(ModelDisposedError);
    expect(() => model.memory()).toThrow(ModelDisposedError);
    await expect(model.generate('x')).rejects.toThrow('The model has been disposed');
  });
});
