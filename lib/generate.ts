/**
 * One generation on the native engine (masked diffusion, or left to right for causal models):
 * builds the request, turns native step events into {@link StepEvent}s, and turns the native
 * result into a {@link GenerateResult}.
 */
import type { Cancellation } from './abort';
import { fromNative } from './errors';
import type { SpecialTokenIds } from './families/llada';
import type {
  NativeArRequest,
  NativeGenerateRequest,
  NativeModel,
  NativeStepEvent,
} from './native-types';
import { CACHE, DREAM_ALG, REMASKING, type ResolvedGenerateOptions } from './options';
import type { GenerateResult, StepEvent } from './results';
import type { Tokenizer } from './tokenizer';

export interface GenerateJob {
  native: NativeModel;
  tokenizer: Tokenizer;
  special: SpecialTokenIds;
  prompt: number[];
  options: ResolvedGenerateOptions;
  /** Masked diffusion (LLaDA's or Dream's sampler), or left to right (causal models). */
  decoding: 'masked' | 'dream' | 'autoregressive';
  cancellation: Cancellation;
  /** Stack of the user's call, captured before going async. */
  callerStack: string;
  /** Receives every event before `options.onStep` (used by `stream()`); must not throw. */
  sink?: (event: StepEvent) => void;
}

function toRequest(job: GenerateJob): NativeGenerateRequest {
  const o = job.options;
  return {
    prompt: Int32Array.from(job.prompt),
    genLength: o.genLength,
    steps: o.steps,
    blockLength: o.blockLength,
    temperature: o.temperature,
    remasking: REMASKING[o.remasking],
    cfgScale: o.cfgScale,
    seed: o.seed,
    maskTokenId: job.special.mask,
    eosTokenId: job.special.eos,
    eotTokenId: job.special.eot,
    logitsEosInf: o.logitsEosInf,
    confidenceEosEotInf: o.confidenceEosEotInf,
    cache: CACHE[o.cache],
    parallel: o.parallel.mode,
    threshold: job.decoding === 'dream' ? o.threshold : o.parallel.threshold,
    factor: o.parallel.factor,
    sampler: job.decoding === 'dream' ? 1 : 0,
    alg: DREAM_ALG[o.alg],
    algTemp: o.algTemp,
    eps: o.eps,
    topK: o.topK,
    topP: o.topP,
    cancel: job.cancellation.flag,
  };
}

function toArRequest(job: GenerateJob): NativeArRequest {
  const o = job.options;
  return {
    prompt: Int32Array.from(job.prompt),
    genLength: o.genLength,
    temperature: o.temperature,
    topK: o.topK,
    topP: o.topP,
    seed: o.seed,
    eosTokenId: job.special.eos,
    stopAtEos: o.stopAtEos,
    cancel: job.cancellation.flag,
  };
}

/** Keeps the generated region as steps commit tokens, and makes events from native ones. */
function eventMaker(job: GenerateJob): (ev: NativeStepEvent) => StepEvent {
  const promptLength = job.prompt.length;
  const genLength = job.options.genLength;
  const canvas = new Array<number>(genLength).fill(job.special.mask);
  let filled = 0;
  return (ev) => {
    const committed = [];
    for (let i = 0; i + 1 < ev.committed.length; i += 2) {
      const position = (ev.committed[i] as number) - promptLength;
      const token = ev.committed[i + 1] as number;
      if (position < 0 || position >= genLength) continue;
      if (canvas[position] === job.special.mask && token !== job.special.mask) filled++;
      canvas[position] = token;
      committed.push({ position, token });
    }
    return {
      step: ev.step,
      block: ev.block,
      committed,
      canvas: [...canvas],
      progress: filled / genLength,
    };
  };
}

/** Index of the first EOS or EOT in `tokens`, or its length. */
function textEnd(tokens: number[], special: SpecialTokenIds): number {
  const i = tokens.findIndex((t) => t === special.eos || (special.eot >= 0 && t === special.eot));
  return i < 0 ? tokens.length : i;
}

/**
 * Runs the job. Rejects with the cancellation's reason when it was cancelled (abort, dispose, a
 * throwing onStep), even if the engine finished first; otherwise with the mapped native error.
 */
export async function runGenerate(job: GenerateJob): Promise<GenerateResult> {
  const makeEvent = eventMaker(job);
  const onStep = job.options.onStep;
  const handle = (native: NativeStepEvent): void => {
    const event = makeEvent(native);
    job.sink?.(event);
    if (!onStep || job.cancellation.cancelled) return;
    try {
      onStep(event);
    } catch (err) {
      job.cancellation.cancel(err);
    }
  };
  let res;
  try {
    res =
      job.decoding === 'autoregressive'
        ? await job.native.generateAr(toArRequest(job), handle)
        : await job.native.generate(toRequest(job), handle);
  } catch (err) {
    if (job.cancellation.cancelled) throw job.cancellation.reason;
    throw fromNative(err, job.callerStack);
  }
  if (job.cancellation.cancelled) throw job.cancellation.reason;
  const canvas = Array.from(res.canvas);
  const tokens = canvas.slice(job.prompt.length);
  const text = job.tokenizer.decode(tokens.slice(0, textEnd(tokens, job.special)));
  const seconds = res.totalMs / 1000;
  return {
    tokens,
    text,
    canvas,
    promptTokens: job.prompt.length,
    steps: res.steps,
    forwardPasses: res.forwards,
    timings: {
      forwardMs: res.forwardMs,
      sampleMs: res.sampleMs,
      totalMs: res.totalMs,
      tokensPerSecond: seconds > 0 ? tokens.length / seconds : 0,
    },
  };
}
