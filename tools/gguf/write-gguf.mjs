#!/usr/bin/env node
// Hugging Face Llama folder -> GGUF v3 (F16), for running the same weights in llama.cpp
// (bench/peer-llama-cpp.js). Plain Node ESM, no dependencies.
//
// Usage:
//   node tools/gguf/write-gguf.mjs <model-folder> <out.gguf> [--f16-copy DIR] [--name NAME]
//        [--no-verify] [--json]
//
// Input: config.json (LlamaForCausalLM: rope_scaling null, no biases, silu), model.safetensors
// (or the shards of model.safetensors.index.json) in F32, BF16 or F16, tokenizer.json (byte-level
// BPE) and, if present, tokenizer_config.json.
//
// Output, as llama.cpp's convert_hf_to_gguf.py writes a Llama model with --outtype f16:
//   - general.architecture "llama", general.file_type 1 (mostly F16) and the llama.* keys
//     (context_length, embedding_length, block_count, feed_forward_length,
//     attention.head_count(_kv), rope.freq_base, rope.dimension_count,
//     attention.layer_norm_rms_epsilon, vocab_size);
//   - tensors token_embd, blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm,
//     ffn_gate, ffn_up, ffn_down}, output_norm, output: 2-D weights in F16, the 1-D norms in F32;
//     with tie_word_embeddings there is no output.weight and llama.cpp uses token_embd;
//   - attn_q / attn_k rows permuted per head. Hugging Face's rotary embedding pairs dimension i
//     with i + head_dim/2 ("rotate half"); llama.cpp's LLAMA rope pairs 2i with 2i+1. Within
//     each head (of q, and of each kv head of k) row j*head_dim/2 + i moves to row 2*i + j
//     (i < head_dim/2, j in {0, 1}), which turns one convention into the other;
//   - tokenizer metadata for a byte-level BPE vocabulary: tokenizer.ggml.model "gpt2",
//     tokenizer.ggml.pre "default", tokens (vocab_size of them; ids the tokenizer does not use
//     become "[PAD<id>]" with type UNUSED), token_type (NORMAL, CONTROL for special added
//     tokens, USER_DEFINED for other added tokens), merges "a b", bos/eos/padding ids,
//     add_bos_token/add_eos_token, and tokenizer.chat_template when tokenizer_config.json has one.
//
// --f16-copy DIR also writes DIR/model.safetensors with exactly the values of the GGUF (matrices
// F16, norms F32, rows in Hugging Face's order) plus the folder's json files, so difflm can run
// the same numbers. Every conversion is counted: values that F16 cannot hold exactly (F32 input,
// or BF16 values below F16's normal range) are reported with the largest absolute change; a
// value that overflows F16 is an error.
//
// After writing, the file is read back (unless --no-verify): magic, version, every metadata
// value and tensor record compared with what was meant, and every tensor's bytes compared with
// a fresh conversion of the source (q/k un-permuted by an independent index formula).
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { endianness } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { isDeepStrictEqual, parseArgs } from 'node:util';

if (endianness() !== 'LE') throw new Error('write-gguf.mjs assumes a little-endian machine');

// ------------------------------------------------------------------------------------------
// GGUF constants (gguf.h / gguf-py constants.py)
// ------------------------------------------------------------------------------------------

const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const GGUF_VERSION = 3;
const ALIGNMENT = 32;
/** Metadata value types. */
const T = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
};
/** ggml tensor types used here. */
const GGML = { F32: 0, F16: 1 };
const GGML_SIZE = { [GGML.F32]: 4, [GGML.F16]: 2 };
/** llama_token_type */
const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 };
const FILE_TYPE_MOSTLY_F16 = 1;

// ------------------------------------------------------------------------------------------
// Float conversions
// ------------------------------------------------------------------------------------------

/** float32 bit pattern -> float16 bit pattern, round to nearest even (overflow -> inf). */
export function f32BitsToF16(u) {
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0); // inf / nan
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // F16 subnormal m * 2^-24: m = (1.mant) * 2^(e - 1 + 24 - 10) in units of the f32 mantissa
    if (e < -10) return sign; // below half the smallest subnormal
    const full = mant | 0x800000;
    const shift = 14 - e; // 14..24
    let m = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (m & 1) === 1)) m += 1;
    return sign | m;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h += 1; // a carry may reach inf: right
  return sign | h;
}

const F16_TO_F32 = (() => {
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0) table[h] = s * m * 2 ** -24;
    else if (e === 31) table[h] = m ? NaN : s * Infinity;
    else table[h] = s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return table;
})();

/** Safetensors dtypes accepted as input. */
const SOURCE_DTYPES = new Set(['F32', 'BF16', 'F16']);

/**
 * Source bytes (`count` values of `dtype`) -> { f16: Uint16Array, f32: Float32Array } as asked,
 * counting inexact conversions into `stats`.
 */
function convertValues(bytes, dtype, count, want, stats) {
  const src32 = new Float32Array(count); // the source values, exactly
  if (dtype === 'F32') {
    src32.set(new Float32Array(bytes.buffer, bytes.byteOffset, count));
  } else if (dtype === 'BF16') {
    const u16 = new Uint16Array(bytes.buffer, bytes.byteOffset, count);
    const u32 = new Uint32Array(src32.buffer);
    for (let i = 0; i < count; i++) u32[i] = u16[i] << 16;
  } else if (dtype === 'F16') {
    const u16 = new Uint16Array(bytes.buffer, bytes.byteOffset, count);
    for (let i = 0; i < count; i++) src32[i] = F16_TO_F32[u16[i]];
  } else {
    throw new Error(`unsupported source dtype ${dtype}`);
  }
  if (want === 'f32') return src32;
  if (dtype === 'F16') return new Uint16Array(bytes.buffer, bytes.byteOffset, count).slice();
  const out = new Uint16Array(count);
  const bits = new Uint32Array(src32.buffer);
  for (let i = 0; i < count; i++) {
    const h = f32BitsToF16(bits[i]);
    out[i] = h;
    const back = F16_TO_F32[h];
    const v = src32[i];
    if (back !== v) {
      if (!Number.isFinite(back) && Number.isFinite(v)) {
        throw new Error(`value ${v} overflows float16 (largest finite 65504)`);
      }
      stats.inexact += 1;
      const diff = Math.abs(back - v);
      if (diff > stats.maxAbsDiff) stats.maxAbsDiff = diff;
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------------
// Safetensors input
// ------------------------------------------------------------------------------------------

/** Header records of one safetensors file: name -> { dtype, shape, file, offset, nbytes }. */
function readSafetensorsHeader(file) {
  const fd = openSync(file, 'r');
  try {
    const lenBuf = Buffer.alloc(8);
    readSync(fd, lenBuf, 0, 8, 0);
    const n = Number(lenBuf.readBigUInt64LE(0));
    const hbuf = Buffer.alloc(n);
    readSync(fd, hbuf, 0, n, 8);
    const header = JSON.parse(hbuf.toString('utf8'));
    const out = new Map();
    for (const [name, info] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const [b, e] = info.data_offsets;
      out.set(name, {
        dtype: info.dtype,
        shape: info.shape,
        file,
        offset: 8 + n + b,
        nbytes: e - b,
      });
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

/** Every tensor of the folder's model.safetensors, or of the shards its index lists. */
function readSourceTensors(dir) {
  const single = join(dir, 'model.safetensors');
  if (existsSync(single)) return readSafetensorsHeader(single);
  const index = join(dir, 'model.safetensors.index.json');
  if (!existsSync(index))
    throw new Error(`${dir}: no model.safetensors or model.safetensors.index.json`);
  const map = JSON.parse(readFileSync(index, 'utf8')).weight_map;
  const out = new Map();
  for (const shard of [...new Set(Object.values(map))].sort()) {
    for (const [k, v] of readSafetensorsHeader(join(dir, shard))) out.set(k, v);
  }
  return out;
}

/** Raw bytes [offset, offset + n) of a file, in a fresh (4-byte aligned) buffer. */
function readBytes(file, offset, n) {
  const buf = Buffer.from(new ArrayBuffer(n));
  const fd = openSync(file, 'r');
  try {
    let done = 0;
    while (done < n) {
      const got = readSync(fd, buf, done, n - done, offset + done);
      if (got === 0) throw new Error(`${file}: unexpected end of file at ${offset + done}`);
      done += got;
    }
  } finally {
    closeSync(fd);
  }
  return buf;
}

// ------------------------------------------------------------------------------------------
// The Llama model: config, names, permutation
// ------------------------------------------------------------------------------------------

/** Llama hyperparameters from config.json; throws on what llama.cpp's LLAMA graph does not run. */
function readLlamaConfig(dir) {
  const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const archs = c.architectures ?? [];
  if (!archs.includes('LlamaForCausalLM') && c.model_type !== 'llama') {
    throw new Error(`${dir}/config.json is not a LlamaForCausalLM model`);
  }
  if (c.rope_scaling != null) throw new Error('rope_scaling is not supported (expected null)');
  if (c.attention_bias || c.mlp_bias) throw new Error('attention/mlp biases are not supported');
  if ((c.hidden_act ?? 'silu') !== 'silu')
    throw new Error(`hidden_act ${c.hidden_act} is not silu`);
  const nHead = c.num_attention_heads;
  const headDim = c.hidden_size / nHead;
  if (c.head_dim !== undefined && c.head_dim !== headDim) {
    throw new Error(`head_dim ${c.head_dim} != hidden_size / num_attention_heads (${headDim})`);
  }
  const eos = Array.isArray(c.eos_token_id) ? c.eos_token_id[0] : c.eos_token_id;
  return {
    raw: c,
    dModel: c.hidden_size,
    nLayers: c.num_hidden_layers,
    nHead,
    nKvHead: c.num_key_value_heads ?? nHead,
    headDim,
    ff: c.intermediate_size,
    vocab: c.vocab_size,
    ctx: c.max_position_embeddings,
    ropeTheta: c.rope_theta ?? 10000,
    eps: c.rms_norm_eps ?? 1e-6,
    tied: c.tie_word_embeddings === true,
    bos: c.bos_token_id ?? null,
    eos: eos ?? null,
    pad: c.pad_token_id ?? null,
  };
}

const BLOCK_MAP = {
  'input_layernorm.weight': 'attn_norm.weight',
  'self_attn.q_proj.weight': 'attn_q.weight',
  'self_attn.k_proj.weight': 'attn_k.weight',
  'self_attn.v_proj.weight': 'attn_v.weight',
  'self_attn.o_proj.weight': 'attn_output.weight',
  'post_attention_layernorm.weight': 'ffn_norm.weight',
  'mlp.gate_proj.weight': 'ffn_gate.weight',
  'mlp.up_proj.weight': 'ffn_up.weight',
  'mlp.down_proj.weight': 'ffn_down.weight',
};

/** The tensors to write, in order: { hf, gguf, shape (HF [out, in]), norm, permuteHeads }. */
function tensorPlan(cfg, source) {
  const plan = [];
  const add = (hf, gguf, shape, extra = {}) => {
    const rec = source.get(hf);
    if (!rec) throw new Error(`tensor ${hf} is missing from the checkpoint`);
    if (!isDeepStrictEqual(rec.shape, shape)) {
      throw new Error(`${hf} has shape [${rec.shape}], expected [${shape}]`);
    }
    if (!SOURCE_DTYPES.has(rec.dtype))
      throw new Error(`${hf}: dtype ${rec.dtype} (F32, BF16, F16 only)`);
    plan.push({ hf, gguf, shape, norm: shape.length === 1, permuteHeads: 0, ...extra });
  };
  const { dModel: d, ff, vocab, nHead, nKvHead, headDim } = cfg;
  add('model.embed_tokens.weight', 'token_embd.weight', [vocab, d]);
  for (let i = 0; i < cfg.nLayers; i++) {
    for (const [suffix, g] of Object.entries(BLOCK_MAP)) {
      const hf = `model.layers.${i}.${suffix}`;
      const shape = {
        'attn_norm.weight': [d],
        'ffn_norm.weight': [d],
        'attn_q.weight': [nHead * headDim, d],
        'attn_k.weight': [nKvHead * headDim, d],
        'attn_v.weight': [nKvHead * headDim, d],
        'attn_output.weight': [d, nHead * headDim],
        'ffn_gate.weight': [ff, d],
        'ffn_up.weight': [ff, d],
        'ffn_down.weight': [d, ff],
      }[g];
      const heads = g === 'attn_q.weight' ? nHead : g === 'attn_k.weight' ? nKvHead : 0;
      add(hf, `blk.${i}.${g}`, shape, { permuteHeads: heads });
    }
  }
  add('model.norm.weight', 'output_norm.weight', [d]);
  // Tied: no output.weight, llama.cpp then multiplies by token_embd (a stored copy is skipped).
  if (!cfg.tied) add('lm_head.weight', 'output.weight', [vocab, d]);
  return plan;
}

/**
 * Rows of `heads` heads (head_dim rows each, `cols` values per row) from Hugging Face's rotate-half
 * order to llama.cpp's interleaved order: in each head, row j*hd/2 + i goes to row 2*i + j.
 * (convert_hf_to_gguf.py: reshape(heads, 2, hd/2, cols).swapaxes(1, 2).)
 */
function permuteRows(values, heads, cols) {
  const hd = values.length / cols / heads;
  const half = hd / 2;
  const out = new values.constructor(values.length);
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < 2; j++) {
      for (let i = 0; i < half; i++) {
        const from = (h * hd + j * half + i) * cols;
        const to = (h * hd + 2 * i + j) * cols;
        out.set(values.subarray(from, from + cols), to);
      }
    }
  }
  return out;
}

/** The inverse of permuteRows, written from the interleaved side (used by the read-back check). */
function unpermuteRows(values, heads, cols) {
  const hd = values.length / cols / heads;
  const out = new values.constructor(values.length);
  for (let r = 0; r < values.length / cols; r++) {
    const h = Math.floor(r / hd);
    const k = r % hd; // interleaved position: pair k >> 1, member k & 1
    const src = h * hd + (k & 1) * (hd / 2) + (k >> 1);
    out.set(values.subarray(r * cols, (r + 1) * cols), src * cols);
  }
  return out;
}

/** One tensor converted to what the GGUF holds (F16 or, for norms, F32), in HF row order. */
function convertTensor(source, t, stats) {
  const rec = source.get(t.hf);
  const count = t.shape.reduce((a, b) => a * b, 1);
  const bytes = readBytes(rec.file, rec.offset, rec.nbytes);
  return convertValues(bytes, rec.dtype, count, t.norm ? 'f32' : 'f16', stats);
}

// ------------------------------------------------------------------------------------------
// Tokenizer metadata
// ------------------------------------------------------------------------------------------

function tokenizerMetadata(dir, cfg) {
  const tok = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
  const tcFile = join(dir, 'tokenizer_config.json');
  const tc = existsSync(tcFile) ? JSON.parse(readFileSync(tcFile, 'utf8')) : {};
  const model = tok.model ?? {};
  if (model.type !== 'BPE') throw new Error(`tokenizer.json model type ${model.type} (BPE only)`);
  const pre = tok.pre_tokenizer;
  const byteLevel =
    pre?.type === 'ByteLevel' ||
    (pre?.type === 'Sequence' && pre.pretokenizers?.some((p) => p.type === 'ByteLevel'));
  if (!byteLevel) throw new Error('tokenizer.json is not byte-level BPE (ByteLevel pre-tokenizer)');

  const tokens = new Array(cfg.vocab).fill(null);
  const types = new Array(cfg.vocab).fill(TOKEN_TYPE.NORMAL);
  for (const [text, id] of Object.entries(model.vocab)) {
    if (id >= cfg.vocab) throw new Error(`token id ${id} >= vocab_size ${cfg.vocab}`);
    tokens[id] = text;
  }
  for (const a of tok.added_tokens ?? []) {
    if (a.id >= cfg.vocab) throw new Error(`added token id ${a.id} >= vocab_size ${cfg.vocab}`);
    tokens[a.id] = a.content;
    types[a.id] = a.special ? TOKEN_TYPE.CONTROL : TOKEN_TYPE.USER_DEFINED;
  }
  let unused = 0;
  for (let i = 0; i < cfg.vocab; i++) {
    if (tokens[i] === null) {
      tokens[i] = `[PAD${i}]`;
      types[i] = TOKEN_TYPE.UNUSED;
      unused += 1;
    }
  }
  const merges = (model.merges ?? []).map((m) => (Array.isArray(m) ? m.join(' ') : m));
  const idOf = (key) => {
    const t = tc[key];
    const content = typeof t === 'string' ? t : t?.content;
    if (content === undefined) return null;
    const i = tokens.indexOf(content);
    return i >= 0 ? i : null;
  };
  const kv = [
    ['tokenizer.ggml.model', T.STRING, 'gpt2'],
    ['tokenizer.ggml.pre', T.STRING, 'default'],
    ['tokenizer.ggml.tokens', [T.ARRAY, T.STRING], tokens],
    ['tokenizer.ggml.token_type', [T.ARRAY, T.INT32], types],
    ['tokenizer.ggml.merges', [T.ARRAY, T.STRING], merges],
  ];
  const bos = cfg.bos ?? idOf('bos_token');
  const eos = cfg.eos ?? idOf('eos_token');
  const pad = cfg.pad ?? idOf('pad_token');
  if (bos !== null) kv.push(['tokenizer.ggml.bos_token_id', T.UINT32, bos]);
  if (eos !== null) kv.push(['tokenizer.ggml.eos_token_id', T.UINT32, eos]);
  if (pad !== null) kv.push(['tokenizer.ggml.padding_token_id', T.UINT32, pad]);
  kv.push(['tokenizer.ggml.add_bos_token', T.BOOL, tc.add_bos_token === true]);
  kv.push(['tokenizer.ggml.add_eos_token', T.BOOL, tc.add_eos_token === true]);
  if (typeof tc.chat_template === 'string') {
    kv.push(['tokenizer.chat_template', T.STRING, tc.chat_template]);
  }
  return { kv, unused, merges: merges.length };
}

// ------------------------------------------------------------------------------------------
// GGUF writing
// ------------------------------------------------------------------------------------------

/** Growable little-endian byte buffer for the header. */
class ByteWriter {
  constructor() {
    this.buf = Buffer.alloc(1 << 16);
    this.len = 0;
  }
  reserve(n) {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }
  u32(v) {
    this.reserve(4);
    this.buf.writeUInt32LE(v, this.len);
    this.len += 4;
  }
  i32(v) {
    this.reserve(4);
    this.buf.writeInt32LE(v, this.len);
    this.len += 4;
  }
  u64(v) {
    this.reserve(8);
    this.buf.writeBigUInt64LE(BigInt(v), this.len);
    this.len += 8;
  }
  f32(v) {
    this.reserve(4);
    this.buf.writeFloatLE(v, this.len);
    this.len += 4;
  }
  bool(v) {
    this.reserve(1);
    this.buf.writeUInt8(v ? 1 : 0, this.len);
    this.len += 1;
  }
  str(s) {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.reserve(b.length);
    b.copy(this.buf, this.len);
    this.len += b.length;
  }
  scalar(type, v) {
    switch (type) {
      case T.UINT32:
        return this.u32(v);
      case T.INT32:
        return this.i32(v);
      case T.FLOAT32:
        return this.f32(v);
      case T.BOOL:
        return this.bool(v);
      case T.STRING:
        return this.str(v);
      case T.UINT64:
        return this.u64(v);
      default:
        throw new Error(`metadata type ${type} is not written by this tool`);
    }
  }
  kv(key, type, value) {
    this.str(key);
    if (Array.isArray(type)) {
      this.u32(T.ARRAY);
      this.u32(type[1]);
      this.u64(value.length);
      for (const v of value) this.scalar(type[1], v);
    } else {
      this.u32(type);
      this.scalar(type, value);
    }
  }
  pad(alignment) {
    const n = (alignment - (this.len % alignment)) % alignment;
    this.reserve(n);
    this.buf.fill(0, this.len, this.len + n);
    this.len += n;
  }
  bytes() {
    return this.buf.subarray(0, this.len);
  }
}

const alignUp = (n) => Math.ceil(n / ALIGNMENT) * ALIGNMENT;

/** The metadata written for `cfg` (list of [key, type, value]). */
function metadata(cfg, name, tokenizerKv) {
  return [
    ['general.architecture', T.STRING, 'llama'],
    ['general.name', T.STRING, name],
    ['general.alignment', T.UINT32, ALIGNMENT],
    ['general.file_type', T.UINT32, FILE_TYPE_MOSTLY_F16],
    ['general.quantization_version', T.UINT32, 2],
    ['llama.vocab_size', T.UINT32, cfg.vocab],
    ['llama.context_length', T.UINT32, cfg.ctx],
    ['llama.embedding_length', T.UINT32, cfg.dModel],
    ['llama.block_count', T.UINT32, cfg.nLayers],
    ['llama.feed_forward_length', T.UINT32, cfg.ff],
    ['llama.attention.head_count', T.UINT32, cfg.nHead],
    ['llama.attention.head_count_kv', T.UINT32, cfg.nKvHead],
    ['llama.rope.freq_base', T.FLOAT32, cfg.ropeTheta],
    ['llama.rope.dimension_count', T.UINT32, cfg.headDim],
    ['llama.attention.layer_norm_rms_epsilon', T.FLOAT32, cfg.eps],
    ...tokenizerKv,
  ];
}

/** A safetensors header (length prefix + JSON padded to 8 bytes) for `records` in order. */
function safetensorsHeader(records) {
  const header = { __metadata__: { format: 'pt', source: 'tools/gguf/write-gguf.mjs' } };
  let offset = 0;
  for (const r of records) {
    header[r.name] = { dtype: r.dtype, shape: r.shape, data_offsets: [offset, offset + r.nbytes] };
    offset += r.nbytes;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Buffer.alloc(Math.ceil(json.length / 8) * 8, 0x20);
  json.copy(padded);
  json = padded;
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json]);
}

function writeAll(fd, bytes) {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
}

const asBytes = (typed) => Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength);

/**
 * Converts the Llama folder `dir` to `out` (GGUF v3, F16) and, with `f16Dir`, writes the same
 * values as an F16 safetensors folder. Returns a summary; verifies the file unless `verify` is
 * false.
 */
export function convertLlamaFolder(dir, out, { f16Dir, name, verify = true } = {}) {
  const t0 = performance.now();
  dir = resolve(dir);
  const cfg = readLlamaConfig(dir);
  const source = readSourceTensors(dir);
  const plan = tensorPlan(cfg, source);
  const tokenizer = tokenizerMetadata(dir, cfg);
  const kv = metadata(cfg, name ?? basename(dir), tokenizer.kv);

  // Header: magic, version, counts, metadata, tensor records; then the aligned data section.
  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(GGUF_VERSION);
  w.u64(plan.length);
  w.u64(kv.length);
  for (const [k, type, v] of kv) w.kv(k, type, v);
  let offset = 0;
  for (const t of plan) {
    t.ggmlType = t.norm ? GGML.F32 : GGML.F16;
    t.count = t.shape.reduce((a, b) => a * b, 1);
    t.nbytes = t.count * GGML_SIZE[t.ggmlType];
    t.offset = offset;
    offset = alignUp(offset + t.nbytes);
    w.str(t.gguf);
    w.u32(t.shape.length);
    for (const n of [...t.shape].reverse()) w.u64(n); // ggml ne[]: the fastest dimension first
    w.u32(t.ggmlType);
    w.u64(t.offset);
  }
  w.pad(ALIGNMENT);
  const dataStart = w.len;

  const stats = { inexact: 0, maxAbsDiff: 0 };
  const fd = openSync(out, 'w');
  let copyFd;
  try {
    writeAll(fd, w.bytes());
    if (f16Dir) {
      mkdirSync(f16Dir, { recursive: true });
      copyFd = openSync(join(f16Dir, 'model.safetensors'), 'w');
      const records = plan.map((t) => ({
        name: t.hf,
        dtype: t.norm ? 'F32' : 'F16',
        shape: t.shape,
        nbytes: t.nbytes,
      }));
      writeAll(copyFd, safetensorsHeader(records));
    }
    const zeros = Buffer.alloc(ALIGNMENT);
    for (const t of plan) {
      const values = convertTensor(source, t, stats);
      if (copyFd !== undefined) writeAll(copyFd, asBytes(values));
      const ordered = t.permuteHeads ? permuteRows(values, t.permuteHeads, t.shape[1]) : values;
      writeAll(fd, asBytes(ordered));
      writeAll(fd, zeros.subarray(0, alignUp(t.nbytes) - t.nbytes));
    }
  } finally {
    closeSync(fd);
    if (copyFd !== undefined) closeSync(copyFd);
  }
  if (f16Dir) {
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) {
      if (existsSync(join(dir, f))) copyFileSync(join(dir, f), join(f16Dir, f));
    }
    const config = { ...cfg.raw, torch_dtype: 'float16' };
    writeFileSync(join(f16Dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  }
  const sourceDtypes = [...new Set(plan.map((t) => source.get(t.hf).dtype))];
  const summary = {
    gguf: resolve(out),
    f16Copy: f16Dir ? resolve(f16Dir) : null,
    tensors: plan.length,
    parameters: plan.reduce((a, t) => a + t.count, 0),
    bytes: statSync(out).size,
    dataStart,
    sourceDtypes,
    tiedEmbeddings: cfg.tied,
    unusedTokenIds: tokenizer.unused,
    merges: tokenizer.merges,
    conversion: {
      inexactValues: stats.inexact,
      maxAbsDiff: stats.maxAbsDiff,
      exact: stats.inexact === 0,
    },
    seconds: 0,
    verified: false,
  };
  if (verify) {
    verifyGguf(out, { dir, cfg, source, plan, kv, dataStart });
    summary.verified = true;
  }
  summary.seconds = (performance.now() - t0) / 1000;
  return summary;
}

// ------------------------------------------------------------------------------------------
// GGUF reading (the check)
// ------------------------------------------------------------------------------------------

/** Sequential little-endian reader over a file, reading ahead in 1 MiB pieces. */
class FileReader {
  constructor(file) {
    this.fd = openSync(file, 'r');
    this.size = statSync(file).size;
    this.pos = 0;
    this.buf = Buffer.alloc(0);
    this.bufStart = 0;
  }
  need(n) {
    if (this.pos + n > this.size)
      throw new Error(`GGUF ends early (need ${n} bytes at ${this.pos})`);
    if (this.pos >= this.bufStart && this.pos + n <= this.bufStart + this.buf.length) return;
    const len = Math.min(Math.max(n, 1 << 20), this.size - this.pos);
    this.buf = Buffer.alloc(len);
    readSync(this.fd, this.buf, 0, len, this.pos);
    this.bufStart = this.pos;
  }
  take(n) {
    this.need(n);
    const at = this.pos - this.bufStart;
    this.pos += n;
    return at;
  }
  u8() {
    const a = this.take(1);
    return this.buf.readUInt8(a);
  }
  i8() {
    const a = this.take(1);
    return this.buf.readInt8(a);
  }
  u16() {
    const a = this.take(2);
    return this.buf.readUInt16LE(a);
  }
  i16() {
    const a = this.take(2);
    return this.buf.readInt16LE(a);
  }
  u32() {
    const a = this.take(4);
    return this.buf.readUInt32LE(a);
  }
  i32() {
    const a = this.take(4);
    return this.buf.readInt32LE(a);
  }
  f32() {
    const a = this.take(4);
    return this.buf.readFloatLE(a);
  }
  f64() {
    const a = this.take(8);
    return this.buf.readDoubleLE(a);
  }
  u64() {
    const a = this.take(8);
    return Number(this.buf.readBigUInt64LE(a));
  }
  i64() {
    const a = this.take(8);
    return Number(this.buf.readBigInt64LE(a));
  }
  str() {
    const n = this.u64();
    const a = this.take(n);
    return this.buf.toString('utf8', a, a + n);
  }
  value(type) {
    switch (type) {
      case T.UINT8:
        return this.u8();
      case T.INT8:
        return this.i8();
      case T.UINT16:
        return this.u16();
      case T.INT16:
        return this.i16();
      case T.UINT32:
        return this.u32();
      case T.INT32:
        return this.i32();
      case T.FLOAT32:
        return this.f32();
      case T.BOOL:
        return this.u8() !== 0;
      case T.STRING:
        return this.str();
      case T.UINT64:
        return this.u64();
      case T.INT64:
        return this.i64();
      case T.FLOAT64:
        return this.f64();
      case T.ARRAY: {
        const elem = this.u32();
        const n = this.u64();
        const out = new Array(n);
        for (let i = 0; i < n; i++) out[i] = this.value(elem);
        return { elem, values: out };
      }
      default:
        throw new Error(`unknown GGUF value type ${type}`);
    }
  }
  close() {
    closeSync(this.fd);
  }
}

/**
 * Reads a GGUF file's header: { version, metadata: Map key -> { type, value }, tensors:
 * [{ name, ne, type, offset }], dataStart, size }.
 */
export function readGguf(file) {
  const r = new FileReader(file);
  try {
    if (r.u32() !== GGUF_MAGIC) throw new Error(`${file} is not a GGUF file`);
    const version = r.u32();
    const nTensors = r.u64();
    const nKv = r.u64();
    const metadata = new Map();
    for (let i = 0; i < nKv; i++) {
      const key = r.str();
      const type = r.u32();
      metadata.set(key, { type, value: r.value(type) });
    }
    const tensors = [];
    for (let i = 0; i < nTensors; i++) {
      const name = r.str();
      const nd = r.u32();
      const ne = [];
      for (let k = 0; k < nd; k++) ne.push(r.u64());
      tensors.push({ name, ne, type: r.u32(), offset: r.u64() });
    }
    const align = metadata.get('general.alignment')?.value ?? ALIGNMENT;
    const dataStart = Math.ceil(r.pos / align) * align;
    return { version, metadata, tensors, dataStart, size: r.size };
  } finally {
    r.close();
  }
}

/** Throws unless `out` holds exactly what convertLlamaFolder meant to write. */
function verifyGguf(out, { source, plan, kv, dataStart }) {
  const g = readGguf(out);
  const fail = (what) => {
    throw new Error(`GGUF read-back of ${out}: ${what}`);
  };
  if (g.version !== GGUF_VERSION) fail(`version ${g.version}`);
  if (g.dataStart !== dataStart) fail(`data starts at ${g.dataStart}, written at ${dataStart}`);
  if (g.metadata.size !== kv.length) fail(`${g.metadata.size} metadata keys, wrote ${kv.length}`);
  for (const [key, type, value] of kv) {
    const got = g.metadata.get(key);
    if (!got) fail(`metadata ${key} missing`);
    if (Array.isArray(type)) {
      if (got.type !== T.ARRAY || got.value.elem !== type[1]) fail(`${key} has the wrong type`);
      if (!isDeepStrictEqual(got.value.values, value)) fail(`${key} differs`);
    } else {
      if (got.type !== type) fail(`${key} has type ${got.type}, wrote ${type}`);
      const same = type === T.FLOAT32 ? got.value === Math.fround(value) : got.value === value;
      if (!same) fail(`${key} = ${got.value}, wrote ${value}`);
    }
  }
  if (g.tensors.length !== plan.length) fail(`${g.tensors.length} tensors, wrote ${plan.length}`);
  const stats = { inexact: 0, maxAbsDiff: 0 };
  for (const [i, t] of plan.entries()) {
    const rec = g.tensors[i];
    if (rec.name !== t.gguf) fail(`tensor ${i} is ${rec.name}, wrote ${t.gguf}`);
    if (!isDeepStrictEqual(rec.ne, [...t.shape].reverse())) fail(`${t.gguf} ne [${rec.ne}]`);
    if (rec.type !== t.ggmlType || rec.offset !== t.offset) fail(`${t.gguf} type/offset`);
    if (rec.offset % ALIGNMENT !== 0) fail(`${t.gguf} offset ${rec.offset} is not aligned`);
    const bytes = readBytes(out, g.dataStart + rec.offset, t.nbytes);
    const fileValues =
      t.ggmlType === GGML.F16
        ? new Uint16Array(bytes.buffer, 0, t.count)
        : new Float32Array(bytes.buffer, 0, t.count);
    const hfOrder = t.permuteHeads
      ? unpermuteRows(fileValues, t.permuteHeads, t.shape[1])
      : fileValues;
    const expected = convertTensor(source, t, stats);
    if (!Buffer.from(hfOrder.buffer).equals(asBytes(expected))) fail(`${t.gguf} data differs`);
  }
  const last = plan.at(-1);
  if (g.dataStart + last.offset + last.nbytes > g.size) fail('file is shorter than its tensors');
}

// ------------------------------------------------------------------------------------------
// CLI
// ------------------------------------------------------------------------------------------

function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      'f16-copy': { type: 'string' },
      name: { type: 'string' },
      'no-verify': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help || positionals.length !== 2) {
    console.error(
      'usage: node tools/gguf/write-gguf.mjs <model-folder> <out.gguf> [--f16-copy DIR] ' +
        '[--name NAME] [--no-verify] [--json]',
    );
    process.exit(values.help ? 0 : 2);
  }
  const [dir, out] = positionals;
  const s = convertLlamaFolder(dir, out, {
    f16Dir: values['f16-copy'],
    name: values.name,
    verify: !values['no-verify'],
  });
  if (values.json) {
    console.log(JSON.stringify(s, null, 2));
    return;
  }
  console.log(
    `wrote ${s.gguf}: ${s.tensors} tensors, ${s.parameters.toLocaleString('en-US')} parameters, ` +
      `${(s.bytes / 2 ** 20).toFixed(1)} MiB, from ${s.sourceDtypes.join('+')}` +
      (s.tiedEmbeddings ? ', tied embeddings (no output.weight)' : '') +
      `, ${s.seconds.toFixed(1)} s`,
  );
  console.log(
    s.conversion.exact
      ? 'conversion to F16 exact (every value representable)'
      : `conversion to F16: ${s.conversion.inexactValues} values rounded, max abs change ` +
          `${s.conversion.maxAbsDiff.toExponential(3)}`,
  );
  if (s.f16Copy) console.log(`F16 safetensors copy with the same values: ${s.f16Copy}`);
  console.log(s.verified ? 'read back: header, metadata and every tensor match' : 'not verified');
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) {
  main();
}
