/** Turns the three prompt forms into token ids. */
import { describeValue, invalidOption } from './errors';
import type { ChatMessage, Tokenizer } from './tokenizer';
import { isPlainObject } from './validate';

/**
 * A prompt:
 * - a string, tokenized with the tokenizer's special tokens;
 * - `{ inputIds }`, token ids used as they are;
 * - `{ messages }`, rendered with the model's chat template, then tokenized without added
 *   special tokens (the template writes BOS).
 */
export type Prompt =
  string | { inputIds: readonly number[] } | { messages: readonly ChatMessage[] };

const PROMPT_FORMS = 'a string, { inputIds: number[] } or { messages: ChatMessage[] }';

/** Checks token ids: integers in [0, vocabRows). Used for prompts and `logits()` inputs. */
export function checkTokenIds(name: string, ids: unknown, vocabRows: number): number[] {
  if (!Array.isArray(ids) && !(ids instanceof Int32Array)) {
    throw invalidOption(name, 'an array of token ids', describeValue(ids));
  }
  const out = Array.from(ids as ArrayLike<unknown>);
  for (const [i, id] of out.entries()) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= vocabRows) {
      throw invalidOption(`${name}[${i}]`, `a token id in [0, ${vocabRows})`, describeValue(id));
    }
  }
  return out as number[];
}

function checkMessages(messages: unknown): ChatMessage[] {
  if (!Array.isArray(messages) || messages.length === 0) {
    throw invalidOption(
      'messages',
      'a non-empty array of { role, content }',
      describeValue(messages),
    );
  }
  for (const [i, m] of messages.entries()) {
    if (!isPlainObject(m) || typeof m.role !== 'string' || typeof m.content !== 'string') {
      throw invalidOption(`messages[${i}]`, '{ role: string, content: string }', describeValue(m));
    }
  }
  return messages as ChatMessage[];
}

/** Prompt → ids; throws InvalidOptionsError naming `prompt`, `inputIds` or `messages`. */
export function promptToIds(prompt: unknown, tokenizer: Tokenizer, vocabRows: number): number[] {
  if (typeof prompt === 'string') return tokenizer.encode(prompt, { addSpecialTokens: true });
  if (isPlainObject(prompt)) {
    const hasIds = prompt.inputIds !== undefined;
    const hasMessages = prompt.messages !== undefined;
    if (hasIds && !hasMessages) return checkTokenIds('inputIds', prompt.inputIds, vocabRows);
    if (hasMessages && !hasIds) {
      const text = tokenizer.applyChatTemplate(checkMessages(prompt.messages));
      return tokenizer.encode(text, { addSpecialTokens: false });
    }
  }
  throw invalidOption('prompt', PROMPT_FORMS, describeValue(prompt));
}
