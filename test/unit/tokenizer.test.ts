import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidOptionsError, ModelLoadError } from '../../lib/errors';
import { promptToIds } from '../../lib/prompt';
import { Tokenizer } from '../../lib/tokenizer';
import {
  SPECIAL,
  tinyTokenizerConfig,
  writeTinyModel,
  type TinyModelFolder,
  type TinyModelParts,
} from './helpers/tiny-model';

const folders: TinyModelFolder[] = [];
afterEach(() => {
  for (const f of folders.splice(0)) f.remove();
});

function tokenizer(parts: TinyModelParts = {}): Tokenizer {
  const f = writeTinyModel(parts);
  folders.push(f);
  return Tokenizer.fromFolder(f.dir);
}

const bytes = (s: string): number[] => [...Buffer.from(s, 'utf8')];

describe('Tokenizer', () => {
  it('encodes and decodes bytes, special tokens included', () => {
    const t = tokenizer();
    expect(t.encode('héllo 🙂')).toEqual(bytes('héllo 🙂'));
    const ids = t.encode('<|startoftext|>hi<|eot_id|>');
    expect(ids).toEqual([SPECIAL.bos, ...bytes('hi'), SPECIAL.eot]);
    expect(t.decode(ids)).toBe('hi');
    expect(t.decode(ids, { skipSpecialTokens: false })).toBe('<|startoftext|>hi<|eot_id|>');
    expect(t.decode([])).toBe('');
  });

  it('knows ids and its vocabulary size (largest id + 1)', () => {
    const t = tokenizer();
    expect(t.tokenToId('<|mdm_mask|>')).toBe(SPECIAL.mask);
    expect(t.tokenToId('<|nope|>')).toBeUndefined();
    expect(t.idToToken(SPECIAL.eos)).toBe('<|endoftext|>');
    expect(t.vocabSize).toBe(262);
    expect([t.bosToken, t.eosToken]).toEqual(['<|startoftext|>', '<|endoftext|>']);
  });

  it("renders LLaDA's chat template (BOS once, assistant header appended)", () => {
    const t = tokenizer();
    expect(t.hasChatTemplate).toBe(true);
    const text = t.applyChatTemplate([
      { role: 'system', content: ' Be brief. ' },
      { role: 'user', content: 'Hi!' },
    ]);
    expect(text).toBe(
      '<|startoftext|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\n',
    );
  });

  it('tokenizes chat prompts without added special tokens', () => {
    const t = tokenizer();
    const ids = promptToIds({ messages: [{ role: 'user', content: 'Hi' }] }, t, 272);
    expect(ids).toEqual([
      SPECIAL.bos,
      SPECIAL.startHeader,
      ...bytes('user'),
      SPECIAL.endHeader,
      ...bytes('\n\nHi'),
      SPECIAL.eot,
      SPECIAL.startHeader,
      ...bytes('assistant'),
      SPECIAL.endHeader,
      ...bytes('\n\n'),
    ]);
  });

  it('accepts bos/eos written as AddedToken objects and a list of named templates', () => {
    const config = {
      ...tinyTokenizerConfig(),
      bos_token: { content: '<|startoftext|>', special: true },
      chat_template: [
        { name: 'tool_use', template: 'TOOLS' },
        { name: 'default', template: '{{ bos_token }}{{ messages[0].content }}' },
      ],
    };
    const t = tokenizer({ tokenizerConfig: config });
    expect(t.applyChatTemplate([{ role: 'user', content: 'x' }])).toBe('<|startoftext|>x');
  });

  it('says clearly when there is no chat template', () => {
    const t = tokenizer({ tokenizerConfig: null });
    expect(t.hasChatTemplate).toBe(false);
    expect(() => t.applyChatTemplate([{ role: 'user', content: 'x' }])).toThrow(
      InvalidOptionsError,
    );
    expect(() => t.applyChatTemplate([{ role: 'user', content: 'x' }])).toThrow(
      /This model has no chat template \(no "chat_template" in tokenizer_config\.json beside .*tokenizer\.json\); pass a string prompt or \{ inputIds \} instead/,
    );
  });

  it('names tokenizer.json when it is missing or unusable', () => {
    expect(() => tokenizer({ tokenizer: null })).toThrow(ModelLoadError);
    expect(() => tokenizer({ tokenizer: null })).toThrow(
      /Cannot read .*tokenizer\.json: not found/,
    );
    expect(() => tokenizer({ tokenizer: { model: { type: 'Nope' } } })).toThrow(
      /Cannot build a tokenizer from .*tokenizer\.json: /,
    );
  });
});

describe('promptToIds', () => {
  it('takes strings, ids and messages', () => {
    const t = tokenizer();
    expect(promptToIds('ab', t, 272)).toEqual([97, 98]);
    expect(promptToIds({ inputIds: [1, 2, 271] }, t, 272)).toEqual([1, 2, 271]);
    expect(promptToIds({ inputIds: Int32Array.of(5) as unknown as number[] }, t, 272)).toEqual([5]);
    expect(promptToIds('', t, 272)).toEqual([]);
  });

  it.each([
    [
      42,
      'Expected a string, { inputIds: number[] } or { messages: ChatMessage[] } for option "prompt" but received 42',
    ],
    [
      {},
      'Expected a string, { inputIds: number[] } or { messages: ChatMessage[] } for option "prompt" but received an object',
    ],
    [
      { inputIds: [1], messages: [] },
      'Expected a string, { inputIds: number[] } or { messages: ChatMessage[] } for option "prompt" but received an object',
    ],
    [
      { inputIds: 'abc' },
      'Expected an array of token ids for option "inputIds" but received "abc" (string)',
    ],
    [
      { inputIds: [1, 272] },
      'Expected a token id in [0, 272) for option "inputIds[1]" but received 272',
    ],
    [
      { inputIds: [-1] },
      'Expected a token id in [0, 272) for option "inputIds[0]" but received -1',
    ],
    [
      { inputIds: [1.5] },
      'Expected a token id in [0, 272) for option "inputIds[0]" but received 1.5',
    ],
    [
      { messages: [] },
      'Expected a non-empty array of { role, content } for option "messages" but received an array',
    ],
    [
      { messages: [{ role: 'user' }] },
      'Expected { role: string, content: string } for option "messages[0]" but received an object',
    ],
  ])('rejects %o', (prompt, message) => {
    const t = tokenizer();
    expect(() => promptToIds(prompt, t, 272)).toThrow(message);
  });
});

// The real GPT-2 tokenizer.json (committed under test/fixtures/tokenizers/gpt2): a byte-level BPE
// with merges, checked against the ids Hugging Face's reference implementation gives for llama.cpp's
// 47 tokenizer test strings (whitespace runs, emoji, CJK, code, ...).
const GPT2 = fileURLToPath(new URL('../fixtures/tokenizers/gpt2/', import.meta.url));
describe('Tokenizer on the GPT-2 tokenizer.json', () => {
  const t = Tokenizer.fromFolder(GPT2);
  const inputs = readFileSync(join(GPT2, 'ggml-vocab-gpt-2.gguf.inp'), 'utf8').split(
    '\n__ggml_vocab_test__\n',
  );
  const outputs = readFileSync(join(GPT2, 'ggml-vocab-gpt-2.gguf.out'), 'utf8').split('\n');

  it('matches the reference ids for "Hello world"', () => {
    expect(t.encode('Hello world')).toEqual([15496, 995]);
    expect(t.decode([15496, 995])).toBe('Hello world');
    expect(t.vocabSize).toBe(50257);
    expect(t.tokenToId('<|endoftext|>')).toBe(50256);
  });

  it('encodes all 47 llama.cpp test strings to the reference ids and decodes them back', () => {
    expect(inputs.length).toBeGreaterThanOrEqual(47);
    inputs.forEach((text, i) => {
      const ids = outputs[i]!.trim() === '' ? [] : outputs[i]!.trim().split(/\s+/).map(Number);
      expect(t.encode(text), `string ${i}: ${JSON.stringify(text)}`).toEqual(ids);
      expect(t.decode(ids, { skipSpecialTokens: false, cleanUpTokenizationSpaces: false })).toBe(
        text,
      );
    });
  });
});
