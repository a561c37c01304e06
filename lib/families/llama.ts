/**
 * Llama family (Hugging Face `LlamaForCausalLM` checkpoints): the same transformer block as
 * LLaDA with a causal mask and Hugging Face's tensor names, decoded left to right with a KV
 * cache. It is difflm's autoregressive baseline. `hfArchitecture` reads the config.json keys
 * that Llama and Qwen2-style models (Dream) share.
 */
import type { JsonObject } from '../json-file';
import { ConfigReader } from './config-keys';
import type { LladaArchitecture } from './llada';

/** True when config.json describes a Llama causal LM. */
export function isLlamaConfig(raw: JsonObject): boolean {
  const archs = raw.architectures;
  if (Array.isArray(archs) && archs.includes('LlamaForCausalLM')) return true;
  return raw.model_type === 'llama';
}

/** A token id key (one id, or a list whose first is used), -1 when absent or null. */
export function tokenIdKey(c: ConfigReader, key: string, rows: number): number {
  const v = c.raw[key];
  const id = Array.isArray(v) ? v[0] : v;
  if (id === undefined || id === null) return -1;
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= rows) {
    throw c.invalid(key, `a token id below vocab_size (${rows}), or a list of them`);
  }
  return id;
}

/**
 * The architecture from Hugging Face decoder keys (hidden_size, num_hidden_layers, ...), with
 * mask id -1; rejects rope scaling and activations other than SiLU. `defaults` are the
 * family's class defaults of the two optional keys.
 */
export function hfArchitecture(
  c: ConfigReader,
  defaults: { ropeTheta: number; rmsNormEps: number },
): LladaArchitecture {
  // Forward variants the engine does not implement.
  if (c.has('rope_scaling') && c.raw.rope_scaling !== null)
    throw c.unsupported('rope_scaling', 'null');
  c.expect('hidden_act', 'silu');
  const dModel = c.int('hidden_size');
  const nLayers = c.int('num_hidden_layers');
  const nHeads = c.int('num_attention_heads');
  const nKvHeads = c.int('num_key_value_heads', { fallback: nHeads });
  if (dModel % nHeads !== 0) {
    throw c.invalid('num_attention_heads', `a divisor of hidden_size (${dModel})`);
  }
  if (c.has('head_dim') && c.int('head_dim') !== dModel / nHeads) {
    throw c.unsupported('head_dim', `hidden_size / num_attention_heads (${dModel / nHeads})`);
  }
  if (nHeads % nKvHeads !== 0) {
    throw c.invalid('num_key_value_heads', `a divisor of num_attention_heads (${nHeads})`);
  }
  const vocabSize = c.int('vocab_size');
  return {
    dModel,
    nLayers,
    nHeads,
    nKvHeads,
    headDim: dModel / nHeads,
    mlpHiddenSize: c.int('intermediate_size'),
    vocabSize,
    vocabRows: vocabSize,
    ropeTheta: c.positive('rope_theta', defaults.ropeTheta),
    rmsNormEps: c.positive('rms_norm_eps', defaults.rmsNormEps),
    maxSequenceLength: c.int('max_position_embeddings'),
    maskTokenId: -1,
    eosTokenId: tokenIdKey(c, 'eos_token_id', vocabSize),
    weightTying: c.bool('tie_word_embeddings', false),
  };
}

/** Validates a Llama config.json (already parsed) and returns its architecture. */
export function parseLlamaConfig(raw: JsonObject, file: string): LladaArchitecture {
  const c = new ConfigReader(raw, file);
  c.expect('attention_bias', false);
  c.expect('mlp_bias', false);
  return hfArchitecture(c, { ropeTheta: 10000, rmsNormEps: 1e-6 });
}
