/**
 * A tiny LLaDA-shaped model folder for tests that need no weights: a byte-level BPE tokenizer
 * (256 byte tokens + LLaDA's special tokens), a matching config.json and an empty weights file.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** LLaDA's chat template (GSAI-ML/LLaDA-8B tokenizer_config.json). */
export const LLADA_CHAT_TEMPLATE =
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}";

export const SPECIAL = {
  bos: 256,
  eos: 257,
  mask: 258,
  startHeader: 259,
  endHeader: 260,
  eot: 261,
} as const;

const SPECIAL_TOKENS: [string, number][] = [
  ['<|startoftext|>', SPECIAL.bos],
  ['<|endoftext|>', SPECIAL.eos],
  ['<|mdm_mask|>', SPECIAL.mask],
  ['<|start_header_id|>', SPECIAL.startHeader],
  ['<|end_header_id|>', SPECIAL.endHeader],
  ['<|eot_id|>', SPECIAL.eot],
];

/** GPT-2's byte → printable character table used by byte-level BPE. */
function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const table: string[] = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = String.fromCodePoint(printable.includes(b) ? b : 256 + extra++);
  }
  return table;
}

/** tokenizer.json of a byte-level BPE: id = byte value for 0..255, then the special tokens. */
export function tinyTokenizerJson(): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  bytesToUnicode().forEach((ch, b) => (vocab[ch] = b));
  const byteLevel = {
    type: 'ByteLevel',
    add_prefix_space: false,
    trim_offsets: true,
    use_regex: true,
  };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_TOKENS.map(([content, id]) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: null,
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
}

export function tinyTokenizerConfig(): Record<string, unknown> {
  return {
    add_bos_token: false,
    add_eos_token: false,
    bos_token: '<|startoftext|>',
    eos_token: '<|endoftext|>',
    pad_token: '<|endoftext|>',
    clean_up_tokenization_spaces: false,
    chat_template: LLADA_CHAT_TEMPLATE,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
}

/** config.json of a tiny LLaDA (the keys and values LLaDA-8B uses, scaled down). */
export function tinyConfig(): Record<string, unknown> {
  return {
    architectures: ['LLaDAModelLM'],
    model_type: 'llada',
    d_model: 64,
    n_layers: 2,
    n_heads: 4,
    n_kv_heads: 4,
    multi_query_attention: null,
    mlp_hidden_size: 128,
    mlp_ratio: 4,
    activation_type: 'silu',
    block_type: 'llama',
    vocab_size: 264,
    embedding_size: 272,
    weight_tying: false,
    rope: true,
    rope_theta: 500000.0,
    alibi: false,
    layer_norm_type: 'rms',
    rms_norm_eps: 1e-5,
    include_bias: false,
    include_qkv_bias: false,
    max_sequence_length: 256,
    mask_token_id: SPECIAL.mask,
    eos_token_id: SPECIAL.eos,
    pad_token_id: SPECIAL.eos,
  };
}

export interface TinyModelFolder {
  dir: string;
  remove(): void;
}

export interface TinyModelParts {
  /** config.json: an object, or raw text (for malformed JSON), or null to leave it out. */
  config?: Record<string, unknown> | string | null;
  tokenizer?: Record<string, unknown> | null;
  tokenizerConfig?: Record<string, unknown> | null;
  /** Extra files (name → content). */
  files?: Record<string, string>;
  /** Write model.safetensors (default true). */
  weights?: boolean;
}

/** Writes a model folder under the OS temp dir. */
export function writeTinyModel(parts: TinyModelParts = {}): TinyModelFolder {
  const dir = mkdtempSync(join(tmpdir(), 'difflm-test-'));
  const write = (name: string, value: unknown): void => {
    if (value === null) return;
    writeFileSync(join(dir, name), typeof value === 'string' ? value : JSON.stringify(value));
  };
  write('config.json', parts.config === undefined ? tinyConfig() : parts.config);
  write('tokenizer.json', parts.tokenizer === undefined ? tinyTokenizerJson() : parts.tokenizer);
  write(
    'tokenizer_config.json',
    parts.tokenizerConfig === undefined ? tinyTokenizerConfig() : parts.tokenizerConfig,
  );
  if (parts.weights ?? true) write('model.safetensors', '');
  for (const [name, content] of Object.entries(parts.files ?? {})) write(name, content);
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
