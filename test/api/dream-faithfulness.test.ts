/**
 * The Dream family against the authors' code (Dream's modeling_dream.py and generation_utils.py,
 * Fast-dLLM's copy at 24cc59e) on a tiny random checkpoint in Dream's layout
 * (tools/fixtures/make_dream_fixtures.py): raw logits, and every deterministic sampler case:
 * the canvas and the positions each step commits; and Fast-dLLM's block-cached decoding
 * (generation_utils_block.py, tools/fixtures/make_dream_cache_fixtures.py): the canvas.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type DiffusionModel, type DreamAlg } from '../../lib/index';
import { FIXTURES, readFloat32, relL2 } from './native-fixture';

interface Case {
  name: string;
  prompt_ids: number[];
  options: {
    max_new_tokens: number;
    steps: number;
    eps: number;
    alg: DreamAlg;
    top_p: number | null;
    top_k: number | null;
    threshold?: number;
  };
  nfe: number;
  output_ids: number[];
  commit_positions: number[][];
  num_transfer: number[];
}
interface Expected {
  special_ids: { eos: number; im_end: number; mask: number };
  logits: { file: string; shape: [number, number]; input_ids: number[] };
  generate: Case[];
}

const dir = join(FIXTURES, 'dream-tiny-a');
const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as Expected;

interface CacheCase {
  name: string;
  prompt_ids: number[];
  options: {
    alg: DreamAlg;
    max_new_tokens: number;
    steps: number;
    block_length: number;
    dual_cache: boolean;
    top_p?: number;
    top_k?: number;
    threshold?: number;
  };
  output_ids: number[];
  forwards: number;
  committing_forwards: number;
  masks_left: number;
  differs_from?: string;
}
const expectedCache = JSON.parse(readFileSync(join(dir, 'expected_cache.json'), 'utf8')) as {
  cases: CacheCase[];
};

describe('dream-tiny-a', () => {
  let model: DiffusionModel;

  beforeAll(async () => {
    model = await loadModel(dir, { threads: 2, device: 'auto' });
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it('reads as a Dream model with its special tokens', () => {
    expect(model.config.family).toBe('dream');
    expect(model.specialTokens).toEqual({
      mask: expected.special_ids.mask,
      eos: expected.special_ids.eos,
      eot: expected.special_ids.im_end,
    });
  });

  it("renders chat prompts with the folder's ChatML template and stops the text at <|im_end|>", async () => {
    const text = model.tokenizer.applyChatTemplate([{ role: 'user', content: 'hi' }]);
    expect(text).toBe(
      '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' +
        '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n',
    );
    const r = await model.generate(
      { messages: [{ role: 'user', content: 'hi' }] },
      { genLength: 8 },
    );
    expect(r.tokens).toHaveLength(8);
    const end = r.tokens.findIndex(
      (t) => t === expected.special_ids.eos || t === expected.special_ids.im_end,
    );
    expect(r.text).toBe(model.tokenizer.decode(end < 0 ? r.tokens : r.tokens.slice(0, end)));
  });

  it("gives the reference model's (unshifted) logits within 1e-5 relative L2 error", async () => {
    const ref = readFloat32(join(dir, expected.logits.file));
    const got = await model.logits({ inputIds: expected.logits.input_ids });
    expect(got.length).toBe(ref.length);
    expect(relL2(got, ref)).toBeLessThanOrEqual(1e-5);
  });

  for (const c of expected.generate) {
    it(`generates the reference canvas step by step: ${c.name}`, async () => {
      const o = c.options;
      const commits: number[][] = [];
      const r = await model.generate(
        { inputIds: c.prompt_ids },
        {
          genLength: o.max_new_tokens,
          steps: o.steps,
          eps: o.eps,
          alg: o.alg,
          temperature: 0,
          topP: o.top_p ?? 1,
          topK: o.top_k ?? 0,
          ...(o.threshold === undefined ? {} : { threshold: o.threshold }),
          onStep: (ev) => {
            commits.push(ev.committed.map((t) => t.position).sort((a, b) => a - b));
          },
        },
      );
      expect(r.canvas).toEqual(c.output_ids);
      expect(r.steps).toBe(c.nfe); // the reference runs one forward a step; confidence_threshold may add one
      // Event positions count from the end of the prompt; a masked prompt position is left out
      // of them (the canvas above shows it filled).
      const P = c.prompt_ids.length;
      const want = c.commit_positions.map((s) => s.filter((p) => p >= P).map((p) => p - P));
      expect(commits).toEqual(want);
      // Steps whose budget is 0 run no forward.
      expect(r.forwardPasses).toBe(c.num_transfer.filter((n) => n > 0).length);
    });
  }

  // Fast-dLLM's generation_utils_block.py (tools/fixtures/make_dream_cache_fixtures.py).
  it('has prefix/dual case pairs on one prompt with different canvases (the caches are told apart)', () => {
    const pairs = expectedCache.cases.filter((c) => c.differs_from !== undefined);
    expect(pairs.length).toBeGreaterThanOrEqual(2);
    for (const c of pairs) {
      const twin = expectedCache.cases.find((d) => d.name === c.differs_from);
      expect(twin?.prompt_ids).toEqual(c.prompt_ids);
      expect(twin?.options.dual_cache).toBe(!c.options.dual_cache);
      expect(twin?.output_ids).not.toEqual(c.output_ids);
    }
  });

  for (const c of expectedCache.cases) {
    it(`decodes in cached blocks as Fast-dLLM's Dream code: ${c.name}`, async () => {
      const o = c.options;
      const r = await model.generate(
        { inputIds: c.prompt_ids },
        {
          genLength: o.max_new_tokens,
          steps: o.steps,
          blockLength: o.block_length,
          cache: o.dual_cache ? 'dual' : 'prefix',
          alg: o.alg,
          temperature: 0,
          topP: o.top_p ?? 1,
          topK: o.top_k ?? 0,
          ...(o.threshold === undefined ? {} : { threshold: o.threshold }),
        },
      );
      expect(r.canvas).toEqual(c.output_ids);
      expect(r.tokens.filter((t) => t === expected.special_ids.mask)).toHaveLength(c.masks_left);
      // The reference also runs forwards that commit nothing (a step whose count is 0, the last
      // one of a block whose steps ran out); ours skips those.
      expect(r.forwardPasses).toBe(c.committing_forwards);
    });
  }

  it('scores by the ELBO with shifted logits, and refuses LLaDA options', async () => {
    const ids = expected.logits.input_ids.filter((t) => t !== expected.special_ids.mask);
    const a = await model.score({ inputIds: ids }, { samples: 16, seed: 1 });
    expect(a.method).toBe('elbo');
    expect(a.nllPerToken).toBeGreaterThan(0);
    expect(Number.isFinite(a.nll)).toBe(true);
    await expect(model.generate('x', { genLength: 8, blockLength: 4 })).rejects.toThrow(
      /blockLength.*only with a KV cache/,
    );
    await expect(model.generate('x', { genLength: 8, cfgScale: 1 })).rejects.toThrow(
      /cfgScale.*LLaDA's sampler/,
    );
    await expect(
      model.generate('x', { genLength: 8, blockLength: 3, cache: 'prefix' }),
    ).rejects.toThrow(/divisor of genLength \(8\) for option "blockLength"/);
  });

  it('samples reproducibly at temperature > 0, with origin and with algTemp', async () => {
    for (const opts of [
      { alg: 'origin' as const, temperature: 0.8 },
      { alg: 'entropy' as const, algTemp: 0.5, temperature: 0.8, topP: 0.9 },
    ]) {
      const run = () =>
        model.generate({ inputIds: [316, 40, 41] }, { genLength: 12, ...opts, seed: 3 });
      const [a, b] = [await run(), await run()];
      expect(a.canvas).toEqual(b.canvas);
      expect(a.tokens).not.toContain(expected.special_ids.mask);
      const other = await model.generate(
        { inputIds: [316, 40, 41] },
        { genLength: 12, ...opts, seed: 4 },
      );
      expect(other.tokens).not.toEqual(a.tokens);
    }
  });
});
