/**
 * Faithfulness to the authors' code: logits and generated ids of random LLaDA-layout
 * checkpoints, expected values made by ML-GSAI/LLaDA generate.py and the LLaDA modeling file
 * (tools/fixtures/make_llada_fixtures.py; reference commits in each expected.json).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type DiffusionModel } from '../../lib/index';
import { FIXTURES, relL2 } from './native-fixture';

interface GenerateCase {
  name: string;
  prompt_ids: number[][];
  options: {
    temperature: number;
    cfg_scale: number;
    remasking: 'low_confidence' | 'random';
    gen_length: number;
    steps: number;
    block_length: number;
    logits_eos_inf: boolean;
    confidence_eos_eot_inf: boolean;
  };
  output_ids: number[][];
  /** Canvas positions committed at each step, per batch row, ascending within a step. */
  commit_positions: number[][][];
}

interface Expected {
  logits: { file: string; shape: [number, number]; input_ids: number[] };
  generate: GenerateCase[];
}

describe.each(['llada-tiny-a', 'llada-tiny-b', 'llada-tiny-b-sharded'])('%s', (name) => {
  const dir = join(FIXTURES, name);
  const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as Expected;
  let model: DiffusionModel;

  beforeAll(async () => {
    model = await loadModel(dir, { threads: 2 });
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it('gives the reference logits within 1e-4 relative L2 error', async () => {
    const raw = readFileSync(join(dir, expected.logits.file));
    const ref = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
    const [rows, vocab] = expected.logits.shape;
    expect(ref.length).toBe(rows * vocab);
    const got = await model.logits({ inputIds: expected.logits.input_ids });
    expect(got.length).toBe(rows * vocab);
    const err = relL2(got, ref);
    expect(err).toBeLessThanOrEqual(1e-4);
  });

  // Every case the reference produced: (32,32,32), (32,16,8), (48,24,16), cfgScale 1, and more.
  for (const c of expected.generate) {
    it(`generates the reference ids: ${c.name}`, async () => {
      const o = c.options;
      expect(o.temperature).toBe(0);
      for (const [row, prompt] of c.prompt_ids.entries()) {
        const steps: number[][] = [];
        const r = await model.generate(
          { inputIds: prompt },
          {
            genLength: o.gen_length,
            steps: o.steps,
            blockLength: o.block_length,
            temperature: o.temperature,
            remasking: o.remasking,
            cfgScale: o.cfg_scale,
            logitsEosInf: o.logits_eos_inf,
            confidenceEosEotInf: o.confidence_eos_eot_inf,
            onStep: (ev) => {
              steps.push(ev.committed.map((t) => t.position + prompt.length).sort((a, b) => a - b));
            },
          },
        );
        expect(r.canvas, `batch row ${row}`).toEqual(c.output_ids[row]);
        // The same positions were unmasked at every step, not only the same final canvas.
        expect(steps, `batch row ${row} commit order`).toEqual(c.commit_positions[row]);
      }
    });
  }

  it('covers the settings the issue names', () => {
    const keys = expected.generate.map(
      (c) => `${c.options.gen_length},${c.options.steps},${c.options.block_length}`,
    );
    for (const k of ['32,32,32', '32,16,8', '48,24,16']) expect(keys).toContain(k);
    expect(expected.generate.some((c) => c.options.cfg_scale === 1)).toBe(true);
  });
});
