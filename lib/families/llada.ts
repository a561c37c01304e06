/**
 * LLaDA family (GSAI-ML/LLaDA-8B-*, LLaDA 1.5, and small models with the same config.json shape):
 * reads config.json into the architecture, maps it to the engine spec, and finds its special ids.
 */
import type { JsonObject } from '../json-file';
import type { NativeModelSpec } from '../native-types';
import { ConfigReader } from './config-keys';

/** Architecture fields of a LLaDA config.json, in camelCase. */
export interface LladaArchitecture {
  dModel: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  mlpHiddenSize: number;
  /** `vocab_size` (or `embedding_size` when `vocab_size` is absent). */
  vocabSize: number;
  /** Rows of the embedding and LM head: `embedding_size` when present, else `vocab_size`. */
  vocabRows: number;
  ropeTheta: number;
  rmsNormEps: number;
  maxSequenceLength: number;
  maskTokenId: number;
  eosTokenId: number;
  weightTying: boolean;
}

/** Token ids the sampler treats specially; -1 where the model has none. */
export interface SpecialTokenIds {
  mask: number;
  eos: number;
  /** `<|eot_id|>` (end of a chat turn), -1 when the tokenizer has no such token. */
  eot: number;
}

/** True when config.json describes a LLaDA model. */
export function isLladaConfig(raw: JsonObject): boolean {
  const archs = raw.architectures;
  if (Array.isArray(archs) && archs.includes('LLaDAModelLM')) return true;
  return raw.model_type === 'llada';
}

/** Flags whose other values change the forward in ways the engine does not implement. */
function rejectUnsupported(c: ConfigReader): void {
  c.expect('include_bias', false);
  c.expect('include_qkv_bias', false);
  c.expect('bias_for_layer_norm', false);
  c.expect('alibi', false);
  c.expect('rope', true);
  c.expect('layer_norm_type', 'rms');
  c.expect('activation_type', 'silu');
  c.expect('block_type', 'llama');
  c.expect('attention_layer_norm', false);
  c.expect('input_emb_norm', false);
  c.expect('scale_logits', false);
}

function kvHeads(c: ConfigReader, nHeads: number): number {
  if (c.raw.multi_query_attention === true) return 1;
  return c.int('n_kv_heads', { fallback: nHeads });
}

function mlpHidden(c: ConfigReader, dModel: number): number {
  if (c.has('mlp_hidden_size')) return c.int('mlp_hidden_size');
  if (c.has('mlp_ratio')) {
    const hidden = c.positive('mlp_ratio') * dModel;
    if (!Number.isSafeInteger(hidden))
      throw c.invalid('mlp_ratio', 'a ratio giving an integer width');
    return hidden;
  }
  throw c.missing('mlp_hidden_size', ' (or "mlp_ratio")');
}

function vocab(c: ConfigReader): { vocabSize: number; vocabRows: number } {
  if (!c.has('vocab_size') && !c.has('embedding_size')) {
    throw c.missing('vocab_size', ' (or "embedding_size")');
  }
  const rows = c.has('embedding_size') ? c.int('embedding_size') : c.int('vocab_size');
  const size = c.has('vocab_size') ? c.int('vocab_size') : rows;
  if (size > rows) throw c.invalid('embedding_size', `at least vocab_size (${size})`);
  return { vocabSize: size, vocabRows: rows };
}

function tokenId(c: ConfigReader, key: string, rows: number): number {
  const id = c.int(key, { allowZero: true });
  if (id >= rows) throw c.invalid(key, `below the vocabulary rows (${rows})`);
  return id;
}

/** Validates a LLaDA config.json (already parsed) and returns its architecture. */
export function parseLladaConfig(raw: JsonObject, file: string): LladaArchitecture {
  const c = new ConfigReader(raw, file);
  rejectUnsupported(c);
  const dModel = c.int('d_model');
  const nLayers = c.int('n_layers');
  const nHeads = c.int('n_heads');
  const nKvHeads = kvHeads(c, nHeads);
  if (dModel % nHeads !== 0) throw c.invalid('n_heads', `a divisor of d_model (${dModel})`);
  if (nHeads % nKvHeads !== 0) {
    throw c.invalid(
      c.has('n_kv_heads') ? 'n_kv_heads' : 'n_heads',
      'such that n_kv_heads divides n_heads',
    );
  }
  const { vocabSize, vocabRows } = vocab(c);
  return {
    dModel,
    nLayers,
    nHeads,
    nKvHeads,
    headDim: dModel / nHeads,
    mlpHiddenSize: mlpHidden(c, dModel),
    vocabSize,
    vocabRows,
    ropeTheta: c.positive('rope_theta', 10000),
    rmsNormEps: c.positive('rms_norm_eps', 1e-5),
    maxSequenceLength: c.int('max_sequence_length'),
    maskTokenId: tokenId(c, 'mask_token_id', vocabRows),
    eosTokenId: tokenId(c, 'eos_token_id', vocabRows),
    weightTying: c.bool('weight_tying', false),
  };
}

/** The engine spec for a LLaDA model (or a Dream or Llama one: same fields). */
export function lladaSpec(
  arch: LladaArchitecture,
  files: string[],
  threads: number,
  device: 'cpu' | 'cuda',
  family: 'llada' | 'dream' | 'llama' = 'llada',
): NativeModelSpec {
  return {
    arch: family,
    device,
    files,
    dModel: arch.dModel,
    nLayers: arch.nLayers,
    nHeads: arch.nHeads,
    nKvHeads: arch.nKvHeads,
    mlpHidden: arch.mlpHiddenSize,
    vocabSize: arch.vocabRows,
    ropeTheta: arch.ropeTheta,
    rmsNormEps: arch.rmsNormEps,
    maxSequenceLength: arch.maxSequenceLength,
    weightTying: arch.weightTying,
    threads,
  };
}

/**
 * Mask and EOS come from config.json; EOT (the end of a chat turn) is `eotToken` when the
 * tokenizer has it: `<|eot_id|>` for LLaDA and Llama, `<|im_end|>` for Dream (Qwen's ChatML).
 */
export function lladaSpecialIds(
  arch: LladaArchitecture,
  tokenToId: (token: string) => number | undefined,
  eotToken = '<|eot_id|>',
): SpecialTokenIds {
  return { mask: arch.maskTokenId, eos: arch.eosTokenId, eot: tokenToId(eotToken) ?? -1 };
}
