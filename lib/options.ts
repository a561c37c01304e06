/**
 * Options of each entry point: one exported type, defaults in one object, one validate function.
 * Every option is checked here, before any native call.
 */
import { availableParallelism } from 'node:os';
import { describeValue, invalidOption } from './errors';
import type { StepEvent } from './results';
import {
  abortSignal,
  bool,
  checkOptionsObject,
  func,
  isPlainObject,
  nonNegativeInt,
  nonNegativeNumber,
  oneOf,
  positiveInt,
} from './validate';

/** How the engine picks which masked positions to commit each step (value: native enum). */
export const REMASKING = { low_confidence: 0, random: 1 } as const;
export type Remasking = keyof typeof REMASKING;

/** Dream's ways of choosing the positions a step commits (value: native enum); see {@link GenerateOptions.alg}. */
export const DREAM_ALG = {
  origin: 0,
  maskgit_plus: 1,
  topk_margin: 2,
  entropy: 3,
  confidence_threshold: 4,
} as const;
export type DreamAlg = keyof typeof DREAM_ALG;

/** KV caching of the masked loop (value: native enum); see {@link GenerateOptions.cache}. */
export const CACHE = { none: 0, prefix: 1, dual: 2 } as const;
export type CacheMode = keyof typeof CACHE;

/**
 * Parallel decoding (Fast-dLLM): each step commits every masked position of the block whose
 * confidence passes the rule, and always at least the most confident one.
 * - `{ threshold: t }`: confidence >= t, t in [0, 1] (Fast-dLLM uses 0.9);
 * - `{ factor: f }`: the r-th most confident position (r = 1, 2, ...) while its confidence is
 *   >= 1 - f / (r + 1), f > 0. Unlike Fast-dLLM's factor mode, which also commits every
 *   position when only the least confident one fails, this stops at the first failure.
 */
export type ParallelOptions = { threshold: number } | { factor: number };

/** Parallel decoding resolved: `mode` is the native enum (0 off, 1 threshold, 2 factor). */
export interface ResolvedParallel {
  mode: 0 | 1 | 2;
  threshold: number;
  factor: number;
}

/**
 * Options of `model.generate()` and `model.stream()`; names mirror LLaDA's `generate()` and
 * Dream's `diffusion_generate()`. Which a model takes depends on its family:
 * - LLaDA (masked diffusion): everything but `topK`, `topP`, `alg`, `algTemp`, `eps` and
 *   `stopAtEos`;
 * - Dream (masked diffusion, Dream's sampler): `genLength` (`max_new_tokens`), `steps`,
 *   `temperature`, `topK`, `topP`, `alg`, `algTemp`, `eps`, `seed`, `signal`, `onStep`;
 * - Llama (left to right): `genLength`, `temperature`, `topK`, `topP`, `stopAtEos`, `seed`,
 *   `signal`, `onStep`.
 *
 * An option the model's family does not take is an error naming it.
 */
export interface GenerateOptions {
  /**
   * Tokens to generate after the prompt (`gen_length`); for an autoregressive model the most
   * it generates (it stops after EOS). Defaults to `128`.
   */
  genLength?: number;
  /**
   * Denoising steps in total (`steps`), one forward each; a multiple of the number of blocks.
   * `steps == genLength` commits one token per step. Defaults to `genLength`.
   */
  steps?: number;
  /**
   * Block length for semi-autoregressive decoding (`block_length`); must divide `genLength`.
   * Blocks are filled left to right, `steps / (genLength / blockLength)` steps each. Dream
   * models take blocks only with a `cache`. Defaults to `genLength` (one block).
   */
  blockLength?: number;
  /** Sampling temperature (Gumbel-max); `0` is greedy. Defaults to `0`. */
  temperature?: number;
  /**
   * Autoregressive and Dream models: keep the `topK` most likely tokens (`0`: off). Dream
   * applies it after `topP`, to the distribution its confidences come from, also at
   * temperature 0. Defaults to `0`.
   */
  topK?: number;
  /**
   * Autoregressive and Dream models: nucleus sampling mass in (0, 1] (`1`: off); Dream applies
   * it at temperature 1 when `temperature` is 0. Defaults to `1`.
   */
  topP?: number;
  /**
   * Dream: how each step picks the positions it commits (`alg`):
   * - `'origin'`: each masked position is revealed with probability 1 - s/t (random order);
   * - `'maskgit_plus'`: the most probable predictions first (p of the token drawn);
   * - `'topk_margin'`: the largest gap between the two most probable tokens first;
   * - `'entropy'`: the lowest-entropy distributions first;
   * - `'confidence_threshold'` (Fast-dLLM's parallel decoding for Dream): each step has a budget
   *   of masks / `steps` positions plus what the step before rejected; of that many most
   *   probable predictions it commits the best and every other one whose probability is at least
   *   `threshold`. The masks must be a multiple of `steps`; when the last step rejects some, one
   *   more step runs.
   *
   * Except for `'confidence_threshold'`, the number committed per step follows Dream's timestep
   * schedule. Defaults to `'entropy'`
   * (Dream's README and evaluation settings); a model folder's generation_config.json overrides
   * that (Dream-v0's sets `'origin'` and 512 steps).
   */
  alg?: DreamAlg;
  /**
   * Dream (not `'origin'`): `alg_temp`; > 0 draws the positions at random with weights
   * softmax(confidence / algTemp) instead of taking the most confident. Defaults to `0`.
   */
  algTemp?: number;
  /** Dream: the last timestep of the schedule `linspace(1, eps, steps + 1)`, in (0, 1). Defaults to `0.001`. */
  eps?: number;
  /** Dream with `alg: 'confidence_threshold'`: the probability to reach, in [0, 1]. Defaults to `0.9`. */
  threshold?: number;
  /**
   * Which masked positions are committed each step:
   * - `'low_confidence'`: the most confident predictions first;
   * - `'random'`: positions chosen at random.
   *
   * Defaults to `'low_confidence'`.
   */
  remasking?: Remasking;
  /** Classifier-free guidance scale (`cfg_scale`); `0` disables (one forward per step). Defaults to `0`. */
  cfgScale?: number;
  /** Seed of every random choice; an integer in [0, 2^53). Same seed, same output. Defaults to `0`. */
  seed?: number;
  /** Never draw EOS (`logits_eos_inf`). Defaults to `false`. */
  logitsEosInf?: boolean;
  /** Give EOS/EOT zero confidence so they commit last (`confidence_eos_eot_inf`). Defaults to `false`. */
  confidenceEosEotInf?: boolean;
  /**
   * KV caching of the masked loop (Fast-dLLM's block caches). Each block starts with one
   * forward over the whole canvas; its other steps reuse cached keys and values:
   * - `'none'`: every step runs the whole canvas (exact LLaDA);
   * - `'prefix'`: positions before the block are reused; the block and everything after it
   *   are recomputed each step;
   * - `'dual'`: positions after the block are reused too; each step recomputes the block only.
   *
   * The caches approximate: outputs can differ from `'none'`. Not with `cfgScale > 0`.
   *
   * Dream models with a cache decode as Fast-dLLM's `generation_utils_block.py`: blocks of
   * `blockLength`, each starting with a forward that commits its first position, then
   * `steps / blocks - 1` cached steps scored by entropy (whatever `alg` says, as the reference
   * does), or `alg: 'confidence_threshold'`'s rule until the block is complete.
   * Defaults to `'none'`.
   */
  cache?: CacheMode;
  /**
   * Parallel decoding: commit every position whose confidence passes a threshold instead of a
   * fixed number per step; blocks then run until they are complete and `steps` is not used.
   * See {@link ParallelOptions}. Defaults to `undefined` (fixed counts from `steps`).
   */
  parallel?: ParallelOptions;
  /** Autoregressive models: stop after EOS. Defaults to `true`. */
  stopAtEos?: boolean;
  /** Cancels the call; it then rejects with `signal.reason`. Defaults to `undefined`. */
  signal?: AbortSignal;
  /**
   * Called after every denoising step, in order, on the main thread. If it throws, generation is
   * cancelled and the call rejects with that error. Defaults to `undefined`.
   */
  onStep?: (event: StepEvent) => void;
}

/** Defaults of {@link GenerateOptions}; `steps` and `blockLength` default to `genLength`. */
export const GENERATE_DEFAULTS = {
  genLength: 128,
  temperature: 0,
  topK: 0,
  topP: 1,
  remasking: 'low_confidence',
  cfgScale: 0,
  seed: 0,
  logitsEosInf: false,
  confidenceEosEotInf: false,
  cache: 'none',
  stopAtEos: true,
  alg: 'entropy',
  algTemp: 0,
  eps: 0.001,
  threshold: 0.9,
} as const satisfies GenerateOptions;

/** {@link GenerateOptions} with every default applied and every constraint checked. */
export interface ResolvedGenerateOptions {
  genLength: number;
  steps: number;
  blockLength: number;
  temperature: number;
  topK: number;
  topP: number;
  remasking: Remasking;
  cfgScale: number;
  seed: number;
  logitsEosInf: boolean;
  confidenceEosEotInf: boolean;
  cache: CacheMode;
  parallel: ResolvedParallel;
  stopAtEos: boolean;
  alg: DreamAlg;
  algTemp: number;
  eps: number;
  threshold: number;
  signal: AbortSignal | undefined;
  onStep: ((event: StepEvent) => void) | undefined;
}

const GENERATE_KEYS = [
  'genLength',
  'steps',
  'blockLength',
  'temperature',
  'topK',
  'topP',
  'remasking',
  'cfgScale',
  'seed',
  'logitsEosInf',
  'confidenceEosEotInf',
  'cache',
  'parallel',
  'stopAtEos',
  'alg',
  'algTemp',
  'eps',
  'threshold',
  'signal',
  'onStep',
] as const satisfies readonly (keyof GenerateOptions)[];

/** What validation needs to know about the call: prompt length and the model's context. */
export interface GenerateContext {
  promptLength: number;
  maxSequenceLength: number;
  /**
   * How the model decodes: masked diffusion with LLaDA's sampler ('masked') or Dream's
   * ('dream'), or left to right.
   */
  decoding: 'masked' | 'dream' | 'autoregressive';
}

/** Options of LLaDA's sampler (and Fast-dLLM's additions to it). */
const LLADA_ONLY = [
  'remasking',
  'cfgScale',
  'logitsEosInf',
  'confidenceEosEotInf',
  'parallel',
] as const;
/** Blocks and KV caches: masked diffusion's (Dream's only with a cache). */
const BLOCK_OPTIONS = ['blockLength', 'cache'] as const;
const DREAM_ONLY = ['alg', 'algTemp', 'eps', 'threshold'] as const;

/** The options a way of decoding does not take, and why. */
function foreignOptions(decoding: GenerateContext['decoding']): [readonly string[], string][] {
  const exact = 'masked diffusion generates exactly genLength tokens';
  switch (decoding) {
    case 'masked':
      return [
        [
          ['topK', 'topP'],
          "top-k/top-p filtering is implemented for Dream's and left-to-right decoding",
        ],
        [['stopAtEos'], exact],
        [DREAM_ONLY, "this is an option of Dream's sampler; this model is decoded as LLaDA"],
      ];
    case 'dream':
      return [
        [LLADA_ONLY, "this is an option of LLaDA's sampler; Dream models use Dream's"],
        [['stopAtEos'], exact],
      ];
    case 'autoregressive':
      return [
        [
          ['steps', ...LLADA_ONLY, ...BLOCK_OPTIONS, ...DREAM_ONLY],
          'this model decodes left to right (autoregressive); masked-diffusion options do not apply',
        ],
      ];
  }
}

function rejectForeign(o: Record<string, unknown>, decoding: GenerateContext['decoding']): void {
  for (const [keys, why] of foreignOptions(decoding)) {
    for (const key of keys) {
      if (o[key] === undefined) continue;
      throw invalidOption(key, 'no value', JSON.stringify(o[key]), why);
    }
  }
}

function unitInterval(key: string, value: unknown): number {
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) {
    throw invalidOption(key, 'a number in [0, 1]', describeValue(value));
  }
  return value;
}

function openUnit(key: string, value: unknown): number {
  if (typeof value !== 'number' || !(value > 0 && value < 1)) {
    throw invalidOption(key, 'a number in (0, 1)', describeValue(value));
  }
  return value;
}

function topP(value: unknown): number {
  if (typeof value !== 'number' || !(value > 0 && value <= 1)) {
    throw invalidOption('topP', 'a number in (0, 1]', JSON.stringify(value));
  }
  return value;
}

const PARALLEL_OFF: ResolvedParallel = { mode: 0, threshold: 0.9, factor: 1 };

function parallel(value: unknown): ResolvedParallel {
  if (value === undefined) return PARALLEL_OFF;
  const keys = isPlainObject(value) ? Object.keys(value) : [];
  if (!isPlainObject(value) || keys.length !== 1 || !['threshold', 'factor'].includes(keys[0]!)) {
    const expected = '{ threshold: number } or { factor: number }';
    throw invalidOption('parallel', expected, describeValue(value));
  }
  if ('threshold' in value) {
    const t = value.threshold;
    if (typeof t !== 'number' || !(t >= 0 && t <= 1)) {
      throw invalidOption('parallel.threshold', 'a number in [0, 1]', describeValue(t));
    }
    return { ...PARALLEL_OFF, mode: 1, threshold: t };
  }
  const f = value.factor;
  if (typeof f !== 'number' || !Number.isFinite(f) || !(f > 0)) {
    throw invalidOption('parallel.factor', 'a finite number > 0', describeValue(f));
  }
  return { ...PARALLEL_OFF, mode: 2, factor: f };
}

function checkShape(genLength: number, blockLength: number, steps: number | undefined): void {
  if (genLength % blockLength !== 0) {
    throw invalidOption(
      'blockLength',
      `a divisor of genLength (${genLength})`,
      String(blockLength),
    );
  }
  const blocks = genLength / blockLength;
  if (steps !== undefined && steps % blocks !== 0) {
    const expected =
      `a multiple of the number of blocks ` +
      `(${blocks} = genLength ${genLength} / blockLength ${blockLength})`;
    throw invalidOption('steps', expected, String(steps));
  }
}

function checkContext(genLength: number, ctx: GenerateContext): void {
  const room = ctx.maxSequenceLength - ctx.promptLength;
  if (genLength > room) {
    const expected =
      `at most ${Math.max(room, 0)} (maxSequenceLength ${ctx.maxSequenceLength} ` +
      `minus ${ctx.promptLength} prompt tokens)`;
    throw invalidOption('genLength', expected, String(genLength));
  }
}

/** Validates options of `generate()`/`stream()` and applies defaults. */
export function validateGenerateOptions(
  options: GenerateOptions | undefined,
  ctx: GenerateContext,
): ResolvedGenerateOptions {
  const o = checkOptionsObject(options, GENERATE_KEYS);
  rejectForeign(o, ctx.decoding);
  /** The value of `key`, or `fallback` when it is undefined (null is a value, and an error). */
  const get = (key: (typeof GENERATE_KEYS)[number], fallback?: unknown): unknown =>
    o[key] === undefined ? fallback : o[key];
  const d = GENERATE_DEFAULTS;
  const genLength = positiveInt('genLength', get('genLength', d.genLength));
  const blockLength = positiveInt('blockLength', get('blockLength', genLength));
  const steps = positiveInt('steps', get('steps', genLength));
  const signal = get('signal');
  const onStep = get('onStep');
  const resolved: ResolvedGenerateOptions = {
    genLength,
    steps,
    blockLength,
    temperature: nonNegativeNumber('temperature', get('temperature', d.temperature)),
    topK: nonNegativeInt('topK', get('topK', d.topK)),
    topP: topP(get('topP', d.topP)),
    remasking: oneOf('remasking', get('remasking', d.remasking), REMASKING),
    cfgScale: nonNegativeNumber('cfgScale', get('cfgScale', d.cfgScale)),
    seed: nonNegativeInt('seed', get('seed', d.seed)),
    logitsEosInf: bool('logitsEosInf', get('logitsEosInf', d.logitsEosInf)),
    confidenceEosEotInf: bool(
      'confidenceEosEotInf',
      get('confidenceEosEotInf', d.confidenceEosEotInf),
    ),
    cache: oneOf('cache', get('cache', d.cache), CACHE),
    parallel: parallel(get('parallel')),
    stopAtEos: bool('stopAtEos', get('stopAtEos', d.stopAtEos)),
    alg: oneOf('alg', get('alg', d.alg), DREAM_ALG),
    algTemp: nonNegativeNumber('algTemp', get('algTemp', d.algTemp)),
    eps: openUnit('eps', get('eps', d.eps)),
    threshold: unitInterval('threshold', get('threshold', d.threshold)),
    signal: signal === undefined ? undefined : abortSignal('signal', signal),
    onStep: onStep === undefined ? undefined : func<(event: StepEvent) => void>('onStep', onStep),
  };
  if (
    ctx.decoding === 'dream' &&
    o.threshold !== undefined &&
    resolved.alg !== 'confidence_threshold'
  ) {
    throw invalidOption(
      'threshold',
      'no value',
      JSON.stringify(o.threshold),
      `it applies to alg 'confidence_threshold' only (alg is '${resolved.alg}')`,
    );
  }
  if (ctx.decoding === 'dream') {
    // Fast-dLLM's block decoding for Dream (generation_utils_block.py) needs its cache.
    if (resolved.cache === 'none' && blockLength !== genLength) {
      throw invalidOption(
        'blockLength',
        `genLength (${genLength}) when cache is 'none'`,
        String(blockLength),
        "Dream decodes in blocks only with a KV cache (cache: 'prefix' or 'dual')",
      );
    }
    checkShape(genLength, blockLength, steps);
  }
  if (ctx.decoding === 'masked') {
    // With parallel decoding, blocks run until complete and steps is not used.
    checkShape(genLength, blockLength, resolved.parallel.mode === 0 ? steps : undefined);
    if (resolved.cache !== 'none' && resolved.cfgScale > 0) {
      throw invalidOption(
        'cache',
        "'none' when cfgScale > 0",
        `'${resolved.cache}'`,
        'classifier-free guidance is not implemented with a KV cache',
      );
    }
  }
  checkContext(genLength, ctx);
  return resolved;
}

/** Where the model runs. */
export const DEVICES = { cpu: 'cpu', cuda: 'cuda', auto: 'auto' } as const;
export type Device = keyof typeof DEVICES;

/** Options of `loadModel()`. */
export interface LoadOptions {
  /**
   * Where to run:
   * - `'cpu'`: the CPU backend;
   * - `'cuda'`: the first NVIDIA GPU (a `DeviceUnavailableError` when there is none);
   * - `'auto'`: CUDA when a usable GPU exists, else the CPU.
   *
   * Defaults to `'auto'`.
   */
  device?: Device;
  /** Worker threads of the CPU backend. Defaults to `os.availableParallelism()`. */
  threads?: number;
}

export interface ResolvedLoadOptions {
  device: Device;
  threads: number;
}

const LOAD_KEYS = ['device', 'threads'] as const satisfies readonly (keyof LoadOptions)[];

/** Validates options of `loadModel()` and applies defaults. */
export function validateLoadOptions(options: LoadOptions | undefined): ResolvedLoadOptions {
  const o = checkOptionsObject(options, LOAD_KEYS);
  return {
    device: oneOf('device', o.device === undefined ? 'auto' : o.device, DEVICES),
    threads: positiveInt('threads', o.threads === undefined ? availableParallelism() : o.threads),
  };
}
