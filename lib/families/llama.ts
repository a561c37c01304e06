/**
 * Llama family (Hugging Face `LlamaForCausalLM` checkpoints): the same transformer block as
 * LLaDA with a causal mask and Hugging Face's tensor names, decoded left to right with a KV
 * cache. It is difflm's autoregressive baseline.
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

/** `eos_token_id` may be one id or a list (the first is used to stop). */
function eosId(c: ConfigReader, rows: number): number {
  const v = c.raw.eos_token_id;
  const id = Array.isArray(v) ? v[0] : v;
  if (id === undefined || id === null) return -1;
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= rows) {
    throw c.invalid('eos_token_id', `a token id below vocab_size (${rows}), or a list of them`);
  }
  return id;
}

/** Validates a Llama config.json (already parsed) and returns its architecture. */
export function parseLlamaConfig(raw: JsonObject, file: string): LladaArchitecture {
  const c = new ConfigReader(raw, file);
  // Forward variants the engine does not implement.
  if (c.has('rope_scaling') && raw.rope_scaling !== null)
    throw c.unsupported('rope_scaling', 'null');
  c.expect('attention_bias', false);
  c.expect('mlp_bias', false);
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
    ropeTheta: c.positive('rope_theta', 10000),
    rmsNormEps: c.positive('rms_norm_eps', 1e-6),
    maxSequenceLength: c.int('max_position_embeddings'),
    maskTokenId: -1,
    eosTokenId: eosId(c, vocabSize),
    weightTying: c.bool('tie_word_embeddings', false),
  };
}
