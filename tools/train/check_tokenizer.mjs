// Checks a tokenizer written by tools/train/bpe.py with @huggingface/tokenizers (what difflm uses):
//   node tools/train/check_tokenizer.mjs <dir with tokenizer.json> [<cache>.check.jsonl]
// - loads tokenizer.json + tokenizer_config.json;
// - a story round-trips (encode without special tokens, then decode);
// - a plain-string encoding with special tokens starts with bos; a chat template prompt does not
//   get a second one;
// - with the .check.jsonl written by common.tokenize_corpus, every document's ids equal the ids
//   the Python encoder produced for training (same pre-tokenization and merges).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';

const [dir, checkFile] = process.argv.slice(2);
if (!dir) {
  console.error('usage: node tools/train/check_tokenizer.mjs <tokenizer dir> [check.jsonl]');
  process.exit(2);
}
const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
const tok = new Tokenizer(json, config);
let failures = 0;
const fail = (msg) => {
  failures++;
  console.error('FAIL', msg);
};

const story =
  'Once upon a time, there was a little girl named Lily. She loved to play outside.\n' +
  'One day, she saw a big, red ball! "Can I play?" she asked her mom. Her mom said, "Yes, Lily."';
const ids = tok.encode(story, { add_special_tokens: false }).ids;
const back = tok.decode(ids, { skip_special_tokens: true });
if (back !== story) fail(`round trip: ${JSON.stringify(back)}`);
console.log(`story: ${story.length} chars -> ${ids.length} tokens; round trip ${back === story ? 'ok' : 'FAILED'}`);
console.log(`  pieces: ${tok.encode(story.slice(0, 60), { add_special_tokens: false }).tokens.join(' | ')}`);

const bosId = tok.token_to_id(config.bos_token);
const withBos = tok.encode('Once upon a time', { add_special_tokens: true }).ids;
if (withBos[0] !== bosId || withBos.length !== 1 + tok.encode('Once upon a time', { add_special_tokens: false }).ids.length) {
  fail(`string prompt with special tokens should be bos + text: ${withBos}`);
}
console.log(`"Once upon a time" with special tokens: [${withBos}] (bos ${bosId})`);
for (const name of ['bos_token', 'eos_token', 'mask_token', 'pad_token']) {
  console.log(`  ${name} ${config[name]} = ${tok.token_to_id(config[name])}`);
}
for (const t of ['<|eot_id|>', '<|start_header_id|>', '<|end_header_id|>']) console.log(`  ${t} = ${tok.token_to_id(t)}`);

if (checkFile) {
  const lines = readFileSync(checkFile, 'utf8').split('\n').filter((l) => l.length > 0);
  let tokens = 0;
  let mismatches = 0;
  const t0 = Date.now();
  for (const [i, line] of lines.entries()) {
    const { text, ids: expected } = JSON.parse(line);
    const got = tok.encode(text, { add_special_tokens: false }).ids;
    tokens += got.length;
    if (got.length !== expected.length || got.some((v, j) => v !== expected[j])) {
      mismatches++;
      if (mismatches <= 3) {
        const j = got.findIndex((v, k) => v !== expected[k]);
        fail(`document ${i}: first difference at ${j}: js ${got.slice(j, j + 5)} python ${expected.slice(j, j + 5)}`);
      }
    }
    if (tok.decode(got, { skip_special_tokens: true }) !== text) fail(`document ${i} does not round-trip`);
  }
  console.log(`corpus: ${lines.length} documents, ${tokens} tokens, ${mismatches} id mismatches (${Date.now() - t0} ms)`);
}
if (failures) process.exit(1);
console.log('ok');
