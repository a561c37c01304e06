// Tokenizer metadata for tools/gguf/write-gguf.mjs: a byte-level BPE tokenizer.json (and
// tokenizer_config.json) as llama.cpp's tokenizer.ggml.* keys.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { T, TOKEN_TYPE } from './constants.mjs';

/** tokenizer.json (and tokenizer_config.json) -> { kv: the tokenizer.* metadata, unused, merges }. */
export function tokenizerMetadata(dir, cfg) {
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
