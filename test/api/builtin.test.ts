/**
 * The built-in models (models/): both load by name and generate, a fixed-seed generation of each
 * reproduces the recorded ids, and their held-out scores match the model cards' (eval.json,
 * written by bench/eval-builtin.js) within 1%.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BUILTIN_MODELS,
  cpuInfo,
  loadModel,
  type DiffusionModel,
  type GenerateOptions,
} from '../../lib/index';
import { FIXTURES } from './native-fixture';

const root = fileURLToPath(new URL('../../', import.meta.url));
const slice = (
  JSON.parse(readFileSync(join(FIXTURES, 'tinystories-heldout.json'), 'utf8')) as {
    chunks: string[];
  }
).chunks;
const regression = JSON.parse(
  readFileSync(join(FIXTURES, 'builtin-regression.json'), 'utf8'),
) as Record<string, { prompt: string; options: GenerateOptions; tokens: Record<string, number[]> }>;

describe.each(Object.entries(BUILTIN_MODELS))('builtin:%s', (kind, folder) => {
  const card = JSON.parse(readFileSync(join(root, 'models', folder, 'eval.json'), 'utf8')) as {
    testSlice: {
      chunks: number;
      nllPerToken: number;
      samples: number;
      batch: number;
      seed: number;
    };
  };
  let model: DiffusionModel;
  beforeAll(async () => {
    model = kind === 'diffusion' ? await loadModel() : await loadModel(`builtin:${kind}`);
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it('loads and writes text', async () => {
    expect(model.config.family).toBe(kind === 'diffusion' ? 'llada' : 'llama');
    const r = await model.generate('Once upon a time', { genLength: 32 });
    expect(r.tokens.length).toBeGreaterThan(0);
    expect(r.text.trim().length).toBeGreaterThan(0);
  });

  it('reproduces the recorded fixed-seed generation (recorded per GEMM path)', async () => {
    const reg = regression[kind]!;
    const path = cpuInfo().gemmPath;
    const want = reg.tokens[path];
    if (want === undefined) {
      throw new Error(
        `no recorded ids for the GEMM path "${path}"; run node bench/eval-builtin.js`,
      );
    }
    const r = await model.generate(reg.prompt, reg.options);
    expect(r.tokens).toEqual(want);
  });

  it('scores the held-out slice as its model card says (within 1%)', async () => {
    const t = card.testSlice;
    let nll = 0;
    let tokens = 0;
    for (const text of slice.slice(0, t.chunks)) {
      const r = await model.score(text, { samples: t.samples, batch: t.batch, seed: t.seed });
      nll += r.nll;
      tokens += r.tokens;
    }
    expect(Math.abs(nll / tokens / t.nllPerToken - 1)).toBeLessThan(0.01);
  });
});
