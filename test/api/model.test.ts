/**
 * The public API over the real native engine and the llada-tiny-a fixture: loading, option
 * errors, events, abort, event-loop responsiveness, queueing, dispose, logits.
 * (Faithfulness against the Python reference lives in the lead's suite.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DeviceUnavailableError,
  InvalidOptionsError,
  devices,
  ModelDisposedError,
  cpuInfo,
  loadModel,
  type DiffusionModel,
  type GenerateOptions,
  type StepEvent,
} from '../../lib/index';
import { FIXTURE_A } from './native-fixture';

describe('API on llada-tiny-a', () => {
  let model: DiffusionModel;
  const prompt = { inputIds: [314, 10, 20, 30, 40] };

  beforeAll(async () => {
    model = await loadModel(FIXTURE_A, { threads: 2 });
  });

  afterAll(async () => {
    await model?.dispose();
  });

  it('loads the fixture and reports the CPU', () => {
    expect(model.config.family).toBe('llada');
    expect(model.config.vocabRows).toBe(320);
    expect(model.specialTokens).toEqual({ mask: 317, eos: 315, eot: 316 });
    const info = cpuInfo();
    expect(info.cores).toBeGreaterThan(0);
    expect(typeof info.gemmPath).toBe('string');
  });

  it('rejects invalid options before the engine runs', async () => {
    await expect(model.generate(prompt, { genLength: 32, blockLength: 5 })).rejects.toThrow(
      new InvalidOptionsError(
        'blockLength',
        'Expected a divisor of genLength (32) for option "blockLength" but received 5',
      ),
    );
    const max = model.config.maxSequenceLength;
    await expect(model.generate(prompt, { genLength: max })).rejects.toThrow(
      `Expected at most ${max - 5} (maxSequenceLength ${max} minus 5 prompt tokens) for option "genLength" but received ${max}`,
    );
  });

  it('generates genLength tokens, without masks, deterministically', async () => {
    const opts: GenerateOptions = { genLength: 32, steps: 16, blockLength: 16 };
    const a = await model.generate(prompt, opts);
    const b = await model.generate(prompt, opts);
    expect(a.tokens).toHaveLength(32);
    expect(a.tokens).not.toContain(317);
    expect(a.canvas.slice(0, 5)).toEqual(prompt.inputIds);
    expect(a.steps).toBe(16);
    expect(a.promptTokens).toBe(5);
    expect(b.tokens).toEqual(a.tokens);
    expect(a.timings.totalMs).toBeGreaterThanOrEqual(0);
    expect(typeof a.text).toBe('string');
  });

  it('sends one event per step that add up to the result', async () => {
    const events: StepEvent[] = [];
    const r = await model.generate(prompt, {
      genLength: 32,
      steps: 32,
      blockLength: 8,
      onStep: (ev) => events.push(ev),
    });
    expect(events.map((e) => e.step)).toEqual([...Array(32).keys()]);
    expect(events.map((e) => e.block)).toEqual([...Array(32).keys()].map((s) => Math.floor(s / 8)));
    const positions = events.flatMap((e) => e.committed.map((c) => c.position));
    expect([...positions].sort((x, y) => x - y)).toEqual([...Array(32).keys()]);
    expect(events.at(-1)?.canvas).toEqual(r.tokens);
    expect(events.at(-1)?.progress).toBe(1);
  });

  it('streams the same run as generate', async () => {
    const opts: GenerateOptions = { genLength: 16, temperature: 1, seed: 3 };
    const expected = await model.generate(prompt, opts);
    const it = model.stream(prompt, opts);
    let count = 0;
    let next = await it.next();
    while (!next.done) {
      count++;
      next = await it.next();
    }
    expect(count).toBe(16);
    expect(next.value.tokens).toEqual(expected.tokens);
  });

  it('aborts mid-generation with signal.reason, and the model stays usable', async () => {
    const controller = new AbortController();
    const reason = new Error('user stop');
    let last = -1;
    const p = model.generate(prompt, {
      genLength: 64,
      steps: 64,
      signal: controller.signal,
      onStep: (ev) => {
        last = ev.step;
        if (ev.step === 2) controller.abort(reason);
      },
    });
    await expect(p).rejects.toBe(reason);
    expect(last).toBeLessThan(63);
    const pre = model.generate(prompt, { genLength: 8, signal: AbortSignal.abort() });
    await expect(pre).rejects.toMatchObject({ name: 'AbortError' });
    await expect(model.generate(prompt, { genLength: 8 })).resolves.toHaveProperty('tokens');
  });

  it('keeps the event loop responsive during generation', async () => {
    const genLength = Math.min(96, model.config.maxSequenceLength - 5);
    let lastTick = performance.now();
    let maxGap = 0;
    let ticks = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - lastTick);
      lastTick = now;
      ticks++;
    }, 10);
    const started = performance.now();
    try {
      for (let i = 0; i < 3; i++) await model.generate(prompt, { genLength, steps: genLength });
    } finally {
      clearInterval(timer);
    }
    const elapsed = performance.now() - started;
    maxGap = Math.max(maxGap, performance.now() - lastTick);
    console.info(
      `generation ${elapsed.toFixed(0)} ms, ${ticks} ticks, max gap ${maxGap.toFixed(1)} ms`,
    );
    expect(maxGap).toBeLessThan(500);
    if (elapsed > 200) expect(ticks).toBeGreaterThan(elapsed / 10 / 4);
  });

  it('gives concurrent calls the results of sequential ones', async () => {
    const opts = (seed: number): GenerateOptions => ({
      genLength: 24,
      steps: 12,
      temperature: 1,
      seed,
    });
    const together = await Promise.all([1, 2, 3].map((s) => model.generate(prompt, opts(s))));
    const sequential = [];
    for (const s of [1, 2, 3]) sequential.push(await model.generate(prompt, opts(s)));
    expect(together.map((r) => r.tokens)).toEqual(sequential.map((r) => r.tokens));
  });

  it('returns logits of positions × vocabulary rows', async () => {
    const ids = [314, 1, 2, 317, 317];
    const logits = await model.logits({ inputIds: ids });
    expect(logits).toBeInstanceOf(Float32Array);
    expect(logits.length).toBe(ids.length * model.config.vocabRows);
    expect(logits.every(Number.isFinite)).toBe(true);
  });
});

describe('dispose on llada-tiny-a', () => {
  it('rejects every later call with ModelDisposedError', async () => {
    const model = await loadModel(FIXTURE_A, { threads: 1 });
    const running = model.generate({ inputIds: [314] }, { genLength: 64 });
    await model.dispose();
    await expect(running).rejects.toBeInstanceOf(ModelDisposedError);
    await expect(model.generate('hi')).rejects.toBeInstanceOf(ModelDisposedError);
    await expect(model.logits({ inputIds: [1] })).rejects.toBeInstanceOf(ModelDisposedError);
    expect(() => model.stream('hi')).toThrow(ModelDisposedError);
  });
});

describe('devices', () => {
  it('lists the CPU and CUDA devices, and refuses device "cuda" with the reason when none', async () => {
    const d = devices();
    expect(d.cpu.cores).toBeGreaterThan(0);
    if (d.cuda.length === 0) {
      expect(d.cudaReason).not.toBe('');
      await expect(loadModel(FIXTURE_A, { device: 'cuda' })).rejects.toThrow(
        new DeviceUnavailableError(`device "cuda" is not available: ${d.cudaReason}`),
      );
      // 'auto' falls back to the CPU.
      const m = await loadModel(FIXTURE_A, { device: 'auto', threads: 1 });
      expect((await m.generate({ inputIds: [314, 1] }, { genLength: 8 })).tokens).toHaveLength(8);
      await m.dispose();
    } else {
      for (const g of d.cuda) {
        expect(g.totalBytes).toBeGreaterThan(0);
        expect(g.computeCapability).toMatch(/^\d+\.\d+$/);
      }
    }
  });
});
