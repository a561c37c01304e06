import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readModelConfig } from '../../lib/config';
import { ModelLoadError } from '../../lib/errors';
import { lladaSpec } from '../../lib/families/llada';
import {
  tinyConfig,
  writeTinyModel,
  type TinyModelFolder,
  type TinyModelParts,
} from './helpers/tiny-model';

const folders: TinyModelFolder[] = [];
afterEach(() => {
  for (const f of folders.splice(0)) f.remove();
});

function folder(parts: TinyModelParts = {}): string {
  const f = writeTinyModel(parts);
  folders.push(f);
  return f.dir;
}

function withConfig(changes: Record<string, unknown>, remove: string[] = []): string {
  const config = { ...tinyConfig(), ...changes };
  for (const key of remove) delete config[key];
  return folder({ config });
}

function loadError(dir: string): ModelLoadError {
  try {
    readModelConfig(dir);
  } catch (err) {
    expect(err).toBeInstanceOf(ModelLoadError);
    expect((err as ModelLoadError).code).toBe('DIFFLM_MODEL_LOAD');
    return err as ModelLoadError;
  }
  throw new Error('expected a ModelLoadError');
}

describe('readModelConfig (LLaDA)', () => {
  it('reads the architecture, defaults and files', () => {
    const dir = folder();
    const c = readModelConfig(dir);
    expect(c).toMatchObject({
      family: 'llada',
      dir,
      files: [join(dir, 'model.safetensors')],
      dModel: 64,
      nLayers: 2,
      nHeads: 4,
      nKvHeads: 4,
      headDim: 16,
      mlpHiddenSize: 128,
      vocabSize: 264,
      vocabRows: 272,
      ropeTheta: 500000,
      rmsNormEps: 1e-5,
      maxSequenceLength: 256,
      maskTokenId: 258,
      eosTokenId: 257,
      weightTying: false,
      generationConfig: undefined,
    });
    expect(c.raw.architectures).toEqual(['LLaDAModelLM']);
  });

  it('applies defaults for optional keys', () => {
    const dir = withConfig({ mlp_ratio: 2 }, [
      'n_kv_heads',
      'mlp_hidden_size',
      'rope_theta',
      'rms_norm_eps',
      'embedding_size',
      'weight_tying',
    ]);
    const c = readModelConfig(dir);
    expect(c).toMatchObject({
      nKvHeads: 4,
      mlpHiddenSize: 128,
      ropeTheta: 10000,
      rmsNormEps: 1e-5,
      vocabSize: 264,
      vocabRows: 264,
      weightTying: false,
    });
  });

  it('recognizes model_type "llada" without architectures, and multi-query attention', () => {
    const c = readModelConfig(
      withConfig({ multi_query_attention: true }, ['architectures', 'n_kv_heads']),
    );
    expect(c.nKvHeads).toBe(1);
  });

  it('maps to the native spec with the embedding rows as vocabulary', () => {
    const c = readModelConfig(folder());
    expect(lladaSpec(c, c.files, 3, 'cpu')).toEqual({
      arch: 'llada',
      device: 'cpu',
      files: c.files,
      dModel: 64,
      nLayers: 2,
      nHeads: 4,
      nKvHeads: 4,
      mlpHidden: 128,
      vocabSize: 272,
      ropeTheta: 500000,
      rmsNormEps: 1e-5,
      maxSequenceLength: 256,
      weightTying: false,
      threads: 3,
    });
  });

  it('reads generation_config.json when present', () => {
    const dir = folder({ files: { 'generation_config.json': '{"eos_token_id": 257}' } });
    expect(readModelConfig(dir).generationConfig).toEqual({ eos_token_id: 257 });
  });

  it('names the folder when it does not exist', () => {
    const err = loadError('/nonexistent/difflm-model');
    expect(err.message).toBe(
      'Model folder /nonexistent/difflm-model does not exist or is not a folder',
    );
  });

  it('names config.json when it is missing or malformed', () => {
    const missing = folder({ config: null });
    expect(loadError(missing).message).toBe(
      `Cannot read ${join(missing, 'config.json')}: not found`,
    );
    const bad = folder({ config: '{"d_model": 64,' });
    const err = loadError(bad);
    expect(err.file).toBe(join(bad, 'config.json'));
    expect(err.message).toMatch(/config\.json is not valid JSON: /);
  });

  it('rejects an unknown architecture, naming architectures and the folder', () => {
    const dir = withConfig({ architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2' });
    const err = loadError(dir);
    expect(err.key).toBe('architectures');
    expect(err.message).toBe(
      `Unsupported model in ${dir}: "architectures" is ["Qwen2ForCausalLM"] and "model_type" is ` +
        '"qwen2"; difflm supports LLaDA ("LLaDAModelLM" / "llada"), Dream ("DreamModel" / ' +
        '"Dream") and Llama ("LlamaForCausalLM" / "llama")',
    );
  });

  it.each([
    'd_model',
    'n_layers',
    'n_heads',
    'max_sequence_length',
    'mask_token_id',
    'eos_token_id',
  ])('names a missing required key: %s', (key) => {
    const dir = withConfig({}, [key]);
    const err = loadError(dir);
    expect(err.key).toBe(key);
    expect(err.file).toBe(join(dir, 'config.json'));
    expect(err.message).toBe(`${join(dir, 'config.json')} is missing the required key "${key}"`);
  });

  it('names vocab_size and mlp_hidden_size with their alternatives', () => {
    const v = withConfig({}, ['vocab_size', 'embedding_size']);
    expect(loadError(v).message).toBe(
      `${join(v, 'config.json')} is missing the required key "vocab_size" (or "embedding_size")`,
    );
    const m = withConfig({}, ['mlp_hidden_size', 'mlp_ratio']);
    expect(loadError(m).message).toBe(
      `${join(m, 'config.json')} is missing the required key "mlp_hidden_size" (or "mlp_ratio")`,
    );
  });

  it.each([
    ['include_bias', true, 'false'],
    ['include_qkv_bias', true, 'false'],
    ['alibi', true, 'false'],
    ['rope', false, 'true'],
    ['layer_norm_type', 'default', '"rms"'],
    ['activation_type', 'gelu', '"silu"'],
    ['block_type', 'sequential', '"llama"'],
    ['attention_layer_norm', true, 'false'],
  ])('rejects unsupported %s = %o', (key, value, supported) => {
    const dir = withConfig({ [key]: value });
    const err = loadError(dir);
    expect(err.key).toBe(key);
    expect(err.message).toBe(
      `${join(dir, 'config.json')}: "${key}": ${JSON.stringify(value)} is not supported by difflm ` +
        `(supported: ${supported})`,
    );
  });

  it('rejects head counts that do not divide', () => {
    const a = withConfig({ n_heads: 5 });
    expect(loadError(a).message).toBe(
      `${join(a, 'config.json')}: "n_heads" must be a divisor of d_model (64) but is 5`,
    );
    const b = withConfig({ n_kv_heads: 3 });
    expect(loadError(b).key).toBe('n_kv_heads');
  });

  it('rejects wrong types and out-of-range token ids', () => {
    const a = withConfig({ d_model: '64' });
    expect(loadError(a).message).toBe(
      `${join(a, 'config.json')}: "d_model" must be a positive integer but is "64"`,
    );
    const b = withConfig({ mask_token_id: 272 });
    expect(loadError(b).message).toBe(
      `${join(b, 'config.json')}: "mask_token_id" must be below the vocabulary rows (272) but is 272`,
    );
    expect(loadError(withConfig({ weight_tying: 'no' })).key).toBe('weight_tying');
  });

  it('resolves sharded weights from the index, and any *.safetensors as a fallback', () => {
    const index = JSON.stringify({
      metadata: {},
      weight_map: {
        a: 'model-00002-of-00002.safetensors',
        b: 'model-00001-of-00002.safetensors',
        c: 'model-00001-of-00002.safetensors',
      },
    });
    const sharded = folder({
      weights: false,
      files: {
        'model.safetensors.index.json': index,
        'model-00001-of-00002.safetensors': '',
        'model-00002-of-00002.safetensors': '',
      },
    });
    expect(readModelConfig(sharded).files).toEqual([
      join(sharded, 'model-00001-of-00002.safetensors'),
      join(sharded, 'model-00002-of-00002.safetensors'),
    ]);
    const loose = folder({ weights: false, files: { 'weights.safetensors': '' } });
    expect(readModelConfig(loose).files).toEqual([join(loose, 'weights.safetensors')]);
  });

  it('names a missing shard, and a folder without weights', () => {
    const dir = folder({
      weights: false,
      files: { 'model.safetensors.index.json': '{"weight_map": {"a": "model-1.safetensors"}}' },
    });
    const err = loadError(dir);
    expect(err.file).toBe(join(dir, 'model-1.safetensors'));
    expect(err.message).toContain('is missing');
    const none = folder({ weights: false });
    expect(loadError(none).message).toBe(
      `No weights in ${none}: expected model.safetensors, model.safetensors.index.json or *.safetensors`,
    );
    writeFileSync(join(none, 'model.safetensors'), '');
    expect(() => readModelConfig(none)).not.toThrow();
  });
});

describe('readModelConfig (Dream)', () => {
  const dream = {
    architectures: ['DreamModel'],
    model_type: 'Dream',
    hidden_size: 64,
    intermediate_size: 160,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    vocab_size: 320,
    max_position_embeddings: 128,
    mask_token_id: 319,
    eos_token_id: 316,
    use_sliding_window: false,
    rope_scaling: null,
  };
  const dreamFolder = (changes: Record<string, unknown>, remove: string[] = []): string => {
    const config: Record<string, unknown> = { ...dream, ...changes };
    for (const key of remove) delete config[key];
    return folder({ config });
  };

  it("reads Dream's keys, with Qwen2's defaults for the optional ones", () => {
    const c = readModelConfig(dreamFolder({}));
    expect(c.family).toBe('dream');
    expect([c.dModel, c.nLayers, c.nHeads, c.nKvHeads, c.headDim]).toEqual([64, 2, 4, 2, 16]);
    expect([c.maskTokenId, c.eosTokenId, c.ropeTheta, c.rmsNormEps]).toEqual([
      319, 316, 10000, 1e-6,
    ]);
    expect(lladaSpec(c, c.files, 2, 'cpu', c.family).arch).toBe('dream');
  });

  it('requires mask_token_id and rejects what the engine does not implement, naming the key', () => {
    expect(loadError(dreamFolder({}, ['mask_token_id'])).key).toBe('mask_token_id');
    expect(loadError(dreamFolder({ mask_token_id: 320 })).key).toBe('mask_token_id');
    expect(loadError(dreamFolder({ use_sliding_window: true })).key).toBe('use_sliding_window');
    expect(loadError(dreamFolder({ rope_scaling: { type: 'yarn' } })).key).toBe('rope_scaling');
    expect(loadError(dreamFolder({ hidden_act: 'gelu' })).key).toBe('hidden_act');
  });
});
