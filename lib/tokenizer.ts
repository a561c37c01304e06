/**
 * Text ↔ token ids, over `@huggingface/tokenizers` (pure JS), plus chat templates rendered with
 * `@huggingface/jinja` from tokenizer_config.json, as transformers does.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { InvalidOptionsError, ModelLoadError } from './errors';
import { readJsonObject, type JsonObject } from './json-file';

/** One chat turn. */
export interface ChatMessage {
  /** "system", "user" or "assistant" (templates may accept others). */
  role: string;
  content: string;
}

export interface EncodeOptions {
  /** Add the tokenizer's special tokens (its post-processor's BOS/EOS). Defaults to `true`. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (mask, EOS, EOT, ...) from the text. Defaults to `true`. */
  skipSpecialTokens?: boolean;
  /**
   * Remove spaces before punctuation as Hugging Face's decode does. Defaults to the folder's
   * `clean_up_tokenization_spaces` (true when unset, as in transformers).
   */
  cleanUpTokenizationSpaces?: boolean;
}

export interface ChatTemplateOptions {
  /** Append the assistant header so the model answers. Defaults to `true`. */
  addGenerationPrompt?: boolean;
}

/** tokenizer_config.json may write a special token as a string or as an AddedToken object. */
function tokenText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && 'content' in value) {
    const content = (value as { content: unknown }).content;
    return typeof content === 'string' ? content : undefined;
  }
  return undefined;
}

/** `chat_template` is a string, or a list/map of named templates of which we take "default". */
function pickChatTemplate(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const entry = value.find((t: { name?: unknown }) => t?.name === 'default') as
      { template?: unknown } | undefined;
    return typeof entry?.template === 'string' ? entry.template : undefined;
  }
  if (typeof value === 'object' && value !== null) {
    const def = (value as JsonObject).default;
    return typeof def === 'string' ? def : undefined;
  }
  return undefined;
}

/** A model's tokenizer (`model.tokenizer`). */
export class Tokenizer {
  /** Number of ids the tokenizer can produce: its largest id + 1 (added tokens included). */
  readonly vocabSize: number;
  /** Path of tokenizer.json. */
  readonly file: string;
  readonly bosToken: string | undefined;
  readonly eosToken: string | undefined;
  private readonly hf: HfTokenizer;
  private readonly chatTemplate: string | undefined;
  private compiledTemplate: Template | undefined;

  /** @internal Use {@link Tokenizer.fromFolder}. */
  constructor(tokenizerJson: JsonObject, config: JsonObject, file: string) {
    this.file = file;
    try {
      this.hf = new HfTokenizer(tokenizerJson, config);
    } catch (err) {
      throw new ModelLoadError(`Cannot build a tokenizer from ${file}: ${(err as Error).message}`, {
        file,
        cause: err,
      });
    }
    let maxId = -1;
    for (const id of this.hf.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
    this.bosToken = tokenText(config.bos_token);
    this.eosToken = tokenText(config.eos_token);
    this.chatTemplate = pickChatTemplate(config.chat_template);
  }

  /** Reads tokenizer.json (required) and tokenizer_config.json (optional) from a model folder. */
  static fromFolder(dir: string): Tokenizer {
    const file = join(dir, 'tokenizer.json');
    const json = readJsonObject(file);
    if (!Array.isArray(json.added_tokens)) json.added_tokens = [];
    const configFile = join(dir, 'tokenizer_config.json');
    const config = existsSync(configFile) ? readJsonObject(configFile) : {};
    return new Tokenizer(json, config, file);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    return this.hf.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    if (ids.length === 0) return '';
    return this.hf.decode([...ids], {
      skip_special_tokens: options.skipSpecialTokens ?? true,
      ...(options.cleanUpTokenizationSpaces === undefined
        ? {}
        : { clean_up_tokenization_spaces: options.cleanUpTokenizationSpaces }),
    });
  }

  /** The id of a token string (special tokens included), or undefined. */
  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  /** The token string of an id, or undefined. */
  idToToken(id: number): string | undefined {
    return this.hf.id_to_token(id);
  }

  /** Whether tokenizer_config.json has a chat template. */
  get hasChatTemplate(): boolean {
    return this.chatTemplate !== undefined;
  }

  /**
   * Renders `messages` with the model's chat template (with `bos_token` and `eos_token` set).
   * Tokenize the result with `addSpecialTokens: false`: BOS comes from the template.
   */
  applyChatTemplate(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    if (this.chatTemplate === undefined) {
      throw new InvalidOptionsError(
        'messages',
        `This model has no chat template (no "chat_template" in tokenizer_config.json beside ${this.file}); ` +
          'pass a string prompt or { inputIds } instead',
      );
    }
    this.compiledTemplate ??= new Template(this.chatTemplate);
    return this.compiledTemplate.render({
      messages,
      add_generation_prompt: options.addGenerationPrompt ?? true,
      bos_token: this.bosToken ?? '',
      eos_token: this.eosToken ?? '',
    });
  }
}
