// The Llama model for tools/gguf/write-gguf.mjs: config.json, the plan of tensors to write (Hugging
// Face name -> GGUF name), the q/k row permutation between the two rope conventions, and one
// tensor's conversion to the values the GGUF holds.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { convertValues, SOURCE_DTYPES } from './f16.mjs';
import { readBytes } from './safetensors.mjs';

/** Llama hyperparameters from config.json; throws on what llama.cpp's LLAMA graph does not run. */
export function readLlamaConfig(dir) {
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
export function tensorPlan(cfg, source) {
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
export function permuteRows(values, heads, cols) {
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
export function unpermuteRows(values, heads, cols) {
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
export function convertTensor(source, t, stats) {
  const rec = source.get(t.hf);
  const count = t.shape.reduce((a, b) => a * b, 1);
  const bytes = readBytes(rec.file, rec.offset, rec.nbytes);
  return convertValues(bytes, rec.dtype, count, t.norm ? 'f32' : 'f16', stats);
}
