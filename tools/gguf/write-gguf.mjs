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
//
// This file is the command line and the entry point other scripts import; the work is in
// constants.mjs (GGUF constants), f16.mjs (float conversions), safetensors.mjs (source tensors),
// llama-plan.mjs (config, tensor plan, q/k permutation), tokenizer.mjs (tokenizer metadata),
// writer.mjs (convertLlamaFolder) and reader.mjs (readGguf and the read-back check).
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { convertLlamaFolder } from './writer.mjs';

export { f32BitsToF16 } from './f16.mjs';
export { readGguf } from './reader.mjs';
export { convertLlamaFolder };

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
