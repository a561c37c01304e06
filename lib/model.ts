/**
 * A loaded diffusion language model.
 *
 * Concurrency: calls on one model (`generate`, `stream`, `logits`) are queued and run one at a
 * time, first in, first out. Load several models for parallel work.
 *
 * Disposal: `dispose()` rejects queued calls with {@link ModelDisposedError}, cancels the running
 * call (which then rejects with ModelDisposedError too), waits for it to end, then frees the
 * native model. Every method called afterwards rejects (or throws) ModelDisposedError.
 */
import { Cancellation, onAbort, throwIfAborted } from './abort';
import { Channel } from './channel';
import type { ModelConfig } from './config';
import {
  ModelDisposedError,
  captureCallerStack,
  describeValue,
  fromNative,
  invalidOption,
} from './errors';
import type { SpecialTokenIds } from './families/llada';
import { runGenerate, type GenerateJob } from './generate';
import { generationDefaults, withDefaults } from './generation-config';
import type { NativeModel } from './native-types';
import { validateGenerateOptions, type GenerateOptions } from './options';
import { checkTokenIds, promptToIds, type Prompt } from './prompt';
import { TaskQueue } from './queue';
import type { GenerateResult, StepEvent } from './results';
import type { Tokenizer } from './tokenizer';
import {
  abortSignal,
  checkOptionsObject,
  isPlainObject,
  nonNegativeInt,
  positiveInt,
} from './validate';

/** Options of `model.score()`. */
export interface ScoreOptions {
  /**
   * Monte-Carlo samples of the ELBO (masked-diffusion models; causal models are scored
   * exactly and ignore it). Defaults to `128` (LLaDA's `mc_num`).
   */
  samples?: number;
  /** Samples per forward pass; part of LLaDA's stratified sampling. Defaults to `8`. */
  batch?: number;
  /** Seed of the masks drawn. Defaults to `0`. */
  seed?: number;
  /** Cancels the call; it then rejects with `signal.reason`. Defaults to `undefined`. */
  signal?: AbortSignal;
}

/** What `model.score()` returns. */
export interface ScoreResult {
  /** Negative log-likelihood in nats over the scored tokens (every token after the first). */
  nll: number;
  /** Tokens scored. */
  tokens: number;
  /** `nll / tokens`. */
  nllPerToken: number;
  /** `exp(nllPerToken)`. */
  perplexity: number;
  /** `'exact'` (causal models) or `'elbo'` (masked diffusion: an upper bound on the NLL). */
  method: 'exact' | 'elbo';
  /** Monte-Carlo samples used (0 when exact). */
  samples: number;
  /** Milliseconds the engine spent. */
  ms: number;
}

/** Options of `model.logits()`. */
export interface LogitsOptions {
  /** Cancels the call; it then rejects with `signal.reason`. Defaults to `undefined`. */
  signal?: AbortSignal;
}

interface ModelParts {
  native: NativeModel;
  config: ModelConfig;
  tokenizer: Tokenizer;
  specialTokens: SpecialTokenIds;
}

/** The entries of `o` whose value is not undefined (undefined means "use the default"). */
function definedOnly(o: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

export class DiffusionModel {
  /** The model's configuration, read from config.json. */
  readonly config: ModelConfig;
  /** The model's tokenizer. */
  readonly tokenizer: Tokenizer;
  /** Mask, EOS and EOT ids the sampler uses. */
  readonly specialTokens: SpecialTokenIds;
  private readonly native: NativeModel;
  private readonly queue = new TaskQueue();
  private readonly active = new Set<Cancellation>();
  private disposing: Promise<void> | undefined;

  private constructor(parts: ModelParts) {
    this.native = parts.native;
    this.config = parts.config;
    this.tokenizer = parts.tokenizer;
    this.specialTokens = parts.specialTokens;
  }

  /** @internal Use `loadModel()`. */
  static _create(parts: ModelParts): DiffusionModel {
    return new DiffusionModel(parts);
  }

  /**
   * The defaults this model's generation_config.json sets (empty when it has none); they apply
   * to every option a `generate()`/`stream()` call leaves unset.
   */
  get generationDefaults(): GenerateOptions {
    return generationDefaults(this.config);
  }

  /** Whether `dispose()` has been called. */
  get disposed(): boolean {
    return this.disposing !== undefined;
  }

  /**
   * Generates `genLength` tokens after the prompt by masked diffusion.
   * @throws {InvalidOptionsError} for a bad prompt or option (the promise rejects).
   * @example
   * const { text } = await model.generate('Why is the sky blue?', { genLength: 64, blockLength: 32 });
   */
  async generate(prompt: Prompt, options?: GenerateOptions): Promise<GenerateResult> {
    const job = this.prepare(prompt, options, captureCallerStack());
    return this.schedule(job.cancellation, job.options.signal, () => runGenerate(job));
  }

  /**
   * Like {@link generate}, as an async iterator of {@link StepEvent}s; its return value (from a
   * manual `next()`) is the {@link GenerateResult}. Every event is delivered, in order. Leaving
   * the loop early (`break`) cancels the generation. Bad options, a disposed model and an
   * already-aborted signal throw synchronously; everything else surfaces from the iteration.
   * @example
   * for await (const ev of model.stream('Hello', { genLength: 32 })) console.log(ev.progress);
   */
  stream(prompt: Prompt, options?: GenerateOptions): AsyncGenerator<StepEvent, GenerateResult> {
    const channel = new Channel<StepEvent>();
    const job = this.prepare(prompt, options, captureCallerStack());
    job.sink = channel.push;
    const stopper = new AbortController();
    const user = job.options.signal;
    const signal = user ? AbortSignal.any([user, stopper.signal]) : stopper.signal;
    const start = (): Promise<GenerateResult> =>
      this.schedule(job.cancellation, signal, () => runGenerate(job));
    return drain(channel, start, stopper);
  }

  /**
   * Full logits of one forward over `inputIds`: a Float32Array of `inputIds.length × vocabRows`,
   * row-major (row i is position i). Large: 4 bytes × positions × vocabulary.
   */
  async logits(
    input: { inputIds: readonly number[] },
    options?: LogitsOptions,
  ): Promise<Float32Array> {
    const callerStack = captureCallerStack();
    this.ensureNotDisposed();
    if (!isPlainObject(input))
      throw invalidOption('input', '{ inputIds: number[] }', describeValue(input));
    const ids = checkTokenIds('inputIds', input.inputIds, this.config.vocabRows);
    if (ids.length === 0 || ids.length > this.config.maxSequenceLength) {
      const expected = `1 to ${this.config.maxSequenceLength} (maxSequenceLength) token ids`;
      throw invalidOption('inputIds', expected, `${ids.length}`);
    }
    const o = checkOptionsObject(options, ['signal']);
    const signal = o.signal === undefined ? undefined : abortSignal('signal', o.signal);
    throwIfAborted(signal);
    const cancellation = new Cancellation();
    return this.schedule(cancellation, signal, async () => {
      try {
        const out = await this.native.logits(Int32Array.from(ids), cancellation.flag);
        if (cancellation.cancelled) throw cancellation.reason;
        return out;
      } catch (err) {
        if (cancellation.cancelled) throw cancellation.reason;
        throw fromNative(err, callerStack);
      }
    });
  }

  /**
   * Likelihood of a text (or ids) under the model: the exact negative log-likelihood for
   * autoregressive models, LLaDA's Monte-Carlo ELBO bound (get_log_likelihood) for masked
   * diffusion ones. Every token after the first is scored, given the ones before it (AR) or the
   * first one (diffusion). Runs in native code; logits stay there.
   * @throws {InvalidOptionsError} for a text longer than the model's context or bad options.
   */
  async score(text: string | { inputIds: readonly number[] }, options?: ScoreOptions) {
    const callerStack = captureCallerStack();
    this.ensureNotDisposed();
    const ids =
      typeof text === 'string'
        ? this.tokenizer.encode(text)
        : checkTokenIds(
            'inputIds',
            (text as { inputIds: readonly number[] }).inputIds,
            this.config.vocabRows,
          );
    const max = this.config.maxSequenceLength;
    if (ids.length < 2 || ids.length > max) {
      throw invalidOption(
        'text',
        `2 to ${max} tokens (the model's context)`,
        `${ids.length} tokens`,
      );
    }
    const o = checkOptionsObject(options, ['samples', 'batch', 'seed', 'signal']);
    const samples = positiveInt('samples', o.samples === undefined ? 128 : o.samples);
    const batch = positiveInt('batch', o.batch === undefined ? 8 : o.batch);
    const seed = nonNegativeInt('seed', o.seed === undefined ? 0 : o.seed);
    const signal = o.signal === undefined ? undefined : abortSignal('signal', o.signal);
    throwIfAborted(signal);
    const exact = this.config.family === 'llama';
    const cancellation = new Cancellation();
    return this.schedule(cancellation, signal, async (): Promise<ScoreResult> => {
      let res;
      try {
        res = await this.native.score({
          ids: Int32Array.from(ids),
          first: 1,
          samples,
          batch,
          seed,
          maskTokenId: this.specialTokens.mask,
          cancel: cancellation.flag,
        });
      } catch (err) {
        if (cancellation.cancelled) throw cancellation.reason;
        throw fromNative(err, callerStack);
      }
      if (cancellation.cancelled) throw cancellation.reason;
      const nllPerToken = res.nll / res.tokens;
      return {
        nll: res.nll,
        tokens: res.tokens,
        nllPerToken,
        perplexity: Math.exp(nllPerToken),
        method: exact ? 'exact' : 'elbo',
        samples: exact ? 0 : samples,
        ms: res.ms,
      };
    });
  }

  /** Bytes of weights mapped and of native working buffers allocated. */
  memory(): { weightBytes: number; workBytes: number } {
    this.ensureNotDisposed();
    return this.native.memory();
  }

  /** Cancels and waits for running work, rejects queued work, frees the native model. Idempotent. */
  dispose(): Promise<void> {
    this.disposing ??= this.disposeNow();
    return this.disposing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }

  private async disposeNow(): Promise<void> {
    this.queue.rejectWaiting(
      () => new ModelDisposedError('The model was disposed before this call started'),
    );
    for (const c of this.active)
      c.cancel(new ModelDisposedError('The model was disposed during this call'));
    await this.queue.idle();
    this.native.dispose();
  }

  private ensureNotDisposed(): void {
    if (this.disposing) throw new ModelDisposedError();
  }

  /** Validates everything a generation needs, synchronously. */
  private prepare(
    prompt: Prompt,
    options: GenerateOptions | undefined,
    callerStack: string,
  ): GenerateJob {
    this.ensureNotDisposed();
    const ids = promptToIds(prompt, this.tokenizer, this.config.vocabRows);
    const family = this.config.family;
    const decoding =
      family === 'llama' ? 'autoregressive' : family === 'dream' ? 'dream' : 'masked';
    // Unset options come from generation_config.json, then from the library's defaults.
    const given = options === undefined || options === null ? {} : options;
    const merged =
      typeof given === 'object' ? withDefaults(this.generationDefaults, definedOnly(given)) : given;
    const resolved = validateGenerateOptions(merged as GenerateOptions, {
      promptLength: ids.length,
      maxSequenceLength: this.config.maxSequenceLength,
      decoding,
    });
    throwIfAborted(resolved.signal);
    return {
      native: this.native,
      tokenizer: this.tokenizer,
      special: this.specialTokens,
      prompt: ids,
      options: resolved,
      decoding,
      cancellation: new Cancellation(),
      callerStack,
    };
  }

  /** Queues `task`; links `signal` to the cancellation while queued or running. */
  private async schedule<T>(
    cancellation: Cancellation,
    signal: AbortSignal | undefined,
    task: () => Promise<T>,
  ): Promise<T> {
    this.ensureNotDisposed();
    let leaveQueue: ((reason: unknown) => void) | undefined;
    const unlisten = onAbort(signal, (reason) => {
      cancellation.cancel(reason);
      leaveQueue?.(reason);
    });
    try {
      return await this.queue.push(
        async () => {
          if (cancellation.cancelled) throw cancellation.reason;
          this.active.add(cancellation);
          try {
            return await task();
          } finally {
            this.active.delete(cancellation);
          }
        },
        (cancel) => (leaveQueue = cancel),
      );
    } finally {
      unlisten();
    }
  }
}

/** The generator behind `stream()`: starts on the first `next()`, stops the run on early exit. */
async function* drain(
  channel: Channel<StepEvent>,
  start: () => Promise<GenerateResult>,
  stopper: AbortController,
): AsyncGenerator<StepEvent, GenerateResult> {
  const run = start();
  run.then(
    () => channel.close(),
    (err: unknown) => channel.fail(err),
  );
  let finished = false;
  try {
    for (;;) {
      const item = await channel.next();
      if (item.done) break;
      yield item.value;
    }
    finished = true;
    return await run;
  } finally {
    if (!finished) {
      stopper.abort(new Error('stream closed by the consumer'));
      await run.catch(() => undefined);
    }
  }
}
