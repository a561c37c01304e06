/**
 * Faithfulness to Fast-dLLM (NVlabs/Fast-dLLM llada/generate.py: generate,
 * generate_with_prefix_cache, generate_with_dual_cache) on the random LLaDA fixtures: the block
 * KV caches and threshold parallel decoding give the reference's final ids and commit the same
 * positions at every step (tools/fixtures/make_fastdllm_fixtures.py; reference commit in each
 * expected_fastdllm.json).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type DiffusionModel } from '../../lib/index';
import { FIXTURES } from './native-fixture';

interface FastDllmCase {
  name: string;
  cache: 'none' | 'prefix' | 'dual';
  prompt_ids: number[][];
  options: {
    gen_length: number;
    steps: number;
    block_length: number;
    temperature: number;
    remasking: 'low_confidence' | 'random';
    threshold: number | null;
  };
  nfe: number;
  output_ids: number[][];
  /** Canvas positions committed at each forward, ascending within a step. */
  commit_positions: number[][][];
}

describe.each(['llada-tiny-a', 'llada-tiny-b'])('%s', (name) => {
  const dir = join(FIXTURES, name);
  const expected = JSON.parse(readFileSync(join(dir, 'expected_fastdllm.json'), 'utf8')) as {
    cases: FastDllmCase[];
  };
  let model: DiffusionModel;

  beforeAll(async () => {
    model = await loadModel(dir, { threads: 2 });
  });
  afterAll(async () => {
    await model?.dispose();
  });

  for (const c of expected.cases) {
    it(`matches Fast-dLLM: ${c.name}`, async () => {
      const o = c.options;
      expect(o.temperature).toBe(0);
      const prompt = c.prompt_ids[0]!;
      const steps: number[][] = [];
      const r = await model.generate(
        { inputIds: prompt },
        {
          genLength: o.gen_length,
          steps: o.steps,
          blockLength: o.block_length,
          temperature: 0,
          remasking: o.remasking,
          cache: c.cache,
          ...(o.threshold === null ? {} : { parallel: { threshold: o.threshold } }),
          onStep: (ev) => {
            steps.push(ev.committed.map((t) => t.position + prompt.length).sort((a, b) => a - b));
          },
        },
      );
      expect(r.canvas).toEqual(c.output_ids[0]);
      // Fast-dLLM's cached functions run one more forward after a block's first step even when
      // that step completed the block (it commits nothing); we skip it. Every other step matches.
      const reference = c.commit_positions[0]!.filter((s) => s.length > 0);
      expect(steps).toEqual(reference);
      const wasted = c.commit_positions[0]!.length - reference.length;
      expect(r.forwardPasses).toBe(c.nfe - wasted);
    });
  }

  it('covers every cache mode with fixed and threshold commits, several per step', () => {
    for (const cache of ['none', 'prefix', 'dual']) {
      const mine = expected.cases.filter((c) => c.cache === cache);
      expect(mine.some((c) => c.options.threshold === null)).toBe(true);
      const parallel = mine.filter((c) => c.options.threshold !== null);
      expect(parallel.some((c) => c.commit_positions[0]!.some((s) => s.length > 1))).toBe(true);
    }
  });
});
