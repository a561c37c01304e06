/** generation_config.json defaults, and how they combine with the caller's options. */
import { describe, expect, it } from 'vitest';
import type { ModelConfig } from '../../lib/config';
import { generationDefaults, withDefaults } from '../../lib/generation-config';

const config = (family: 'llada' | 'dream' | 'llama', g: Record<string, unknown> | undefined) =>
  ({ family, generationConfig: g }) as unknown as ModelConfig;

describe('generation_config.json defaults', () => {
  it('reads the masked-diffusion keys', () => {
    const g = {
      gen_length: 128,
      steps: 128,
      block_length: 32,
      temperature: 0.8,
      remasking: 'random',
      cfg_scale: 0,
    };
    expect(generationDefaults(config('llada', g))).toEqual({
      genLength: 128,
      steps: 128,
      blockLength: 32,
      temperature: 0.8,
      remasking: 'random',
      cfgScale: 0,
    });
    expect(generationDefaults(config('llada', undefined))).toEqual({});
  });

  it("reads Dream's keys (Dream-v0's generation_config.json), nulls unset", () => {
    const g = {
      alg: 'origin',
      alg_temp: null,
      eps: 0.001,
      steps: 512,
      temperature: 0.0,
      top_p: null,
      top_k: null,
      bos_token_id: 151643,
    };
    expect(generationDefaults(config('dream', g))).toEqual({
      alg: 'origin',
      eps: 0.001,
      steps: 512,
      temperature: 0,
    });
    // An alg difflm does not implement is passed on, for generate() to name it.
    expect(generationDefaults(config('dream', { alg: 'confidence_threshold' }))).toEqual({
      alg: 'confidence_threshold',
    });
  });

  it('reads the Hugging Face keys for autoregressive models', () => {
    const g = { max_new_tokens: 64, do_sample: true, temperature: 0.8, top_k: 40, bos_token_id: 1 };
    expect(generationDefaults(config('llama', g))).toEqual({
      genLength: 64,
      temperature: 0.8,
      topK: 40,
    });
    expect(generationDefaults(config('llama', { do_sample: false, temperature: 0.7 }))).toEqual({
      temperature: 0,
    });
  });

  it('lets the caller win, and drops defaults tied to another genLength', () => {
    const d = { genLength: 128, steps: 128, blockLength: 32, temperature: 0.8 };
    expect(withDefaults(d, {})).toEqual(d);
    expect(withDefaults(d, { genLength: 64 })).toEqual({
      genLength: 64,
      blockLength: 32,
      temperature: 0.8,
    });
    expect(withDefaults(d, { genLength: 48 })).toEqual({ genLength: 48, temperature: 0.8 });
    expect(withDefaults(d, { temperature: 0, steps: 64 })).toEqual({
      ...d,
      temperature: 0,
      steps: 64,
    });
  });
});
