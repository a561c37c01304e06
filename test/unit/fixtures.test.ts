/** The committed LLaDA fixtures read through config.ts and tokenizer.ts (no engine needed). */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readModelConfig } from '../../lib/config';
import { lladaSpecialIds } from '../../lib/families/llada';
import { Tokenizer } from '../../lib/tokenizer';

const fixtures = fileURLToPath(new URL('../fixtures/', import.meta.url));

describe.each(['llada-tiny-a', 'llada-tiny-b', 'llada-tiny-b-sharded'])('fixture %s', (name) => {
  const dir = join(fixtures, name);
  it('reads as a LLaDA model with its weight files', () => {
    const c = readModelConfig(dir);
    expect(c.family).toBe('llada');
    expect(c.files.length).toBe(name.endsWith('sharded') ? 2 : 1);
    for (const file of c.files) expect(existsSync(file)).toBe(true);
  });

  it('has a tokenizer that fits the model and names the special ids', () => {
    const c = readModelConfig(dir);
    const t = Tokenizer.fromFolder(dir);
    expect(t.vocabSize).toBeLessThanOrEqual(c.vocabRows);
    expect(lladaSpecialIds(c, (s) => t.tokenToId(s))).toEqual({
      mask: t.tokenToId('<|mdm_mask|>'),
      eos: t.tokenToId('<|endoftext|>'),
      eot: t.tokenToId('<|eot_id|>'),
    });
    const chat = t.applyChatTemplate([{ role: 'user', content: 'hi' }]);
    const ids = t.encode(chat, { addSpecialTokens: false });
    expect(ids[0]).toBe(t.tokenToId('<|startoftext|>'));
    expect(ids[1]).toBe(t.tokenToId('<|start_header_id|>'));
    expect(t.decode(t.encode('hello there'))).toBe('hello there');
  });
});
