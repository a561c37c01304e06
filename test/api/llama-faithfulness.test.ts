/**
 * The autoregressive baseline against an independent PyTorch implementation of Hugging Face
 * Llama (cross-checked against the LLaDA reference code with a causal mask): logits, and greedy
 * continuations decoded with the KV cache (tools/fixtures/make_llama_fixtures.py).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type DiffusionModel } from '../../lib/index';
import { FIXTURES, readFloat32, relL2 } from './native-fixture';

interface Expected {
  logits: { file: string; shape: [number, number]; input_ids: number[] };
  greedy: { name: string; prompt_ids: number[]; max_new_tokens: number; new_ids: number[] }[];
}

describe.each(['llama-tiny-a', 'llama-tiny-b'])('%s', (name) => {
  const dir = join(FIXTURES, name);
  const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as Expected;
  let model: DiffusionModel;

  beforeAll(async () => {
    model = await loadModel(dir, { threads: 2 });
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it('reads as a Llama model', () => {
    expect(model.config.family).toBe('llama');
  });

  it('gives the reference logits within 1e-4 relative L2 error', async () => {
    const ref = readFloat32(join(dir, expected.logits.file));
    const got = await model.logits({ inputIds: expected.logits.input_ids });
    expect(got.length).toBe(ref.length);
    expect(relL2(got, ref)).toBeLessThanOrEqual(1e-4);
  });

  for (const c of expected.greedy) {
    it(`decodes the reference greedy ids with the KV cache: ${c.name}`, async () => {
      const events: number[] = [];
      const r = await model.generate(
        { inputIds: c.prompt_ids },
        {
          genLength: c.max_new_tokens,
          onStep: (ev) => {
            events.push(...ev.committed.map((t) => t.token));
          },
        },
      );
      // The fixtures' continuations contain no EOS, so decoding runs the full length.
      expect(r.tokens).toEqual(c.new_ids);
      expect(events).toEqual(c.new_ids);
      expect(r.steps).toBe(c.max_new_tokens);
    });
  }

  it('scores exactly, and refuses a text longer than the context', async () => {
    const ids = expected.logits.input_ids;
    const r = await model.score({ inputIds: ids });
    expect(r.method).toBe('exact');
    expect(r.tokens).toBe(ids.length - 1);
    // The exact NLL from the reference logits of the same ids.
    const ref = readFloat32(join(dir, expected.logits.file));
    const vocab = expected.logits.shape[1];
    let nll = 0;
    for (let t = 1; t < ids.length; t++) {
      const row = ref.subarray((t - 1) * vocab, t * vocab);
      const max = Math.max(...row);
      const z = row.reduce((acc, x) => acc + Math.exp(x - max), 0);
      nll -= row[ids[t]!]! - max - Math.log(z);
    }
    expect(Math.abs(r.nll / nll - 1)).toBeLessThan(1e-4);
    const max = model.config.maxSequenceLength;
    await expect(model.score({ inputIds: new Array(max + 1).fill(1) })).rejects.toThrow(
      `Expected 2 to ${max} tokens (the model's context) for option "text" but received ${max + 1} tokens`,
    );
  });

  it('rejects masked-diffusion options', async () => {
    await expect(model.generate({ inputIds: [1, 2] }, { steps: 4, genLength: 4 })).rejects.toThrow(
      'masked-diffusion options do not apply',
    );
  });
});
