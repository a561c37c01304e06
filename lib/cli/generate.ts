/** `difflm generate`: load a model, denoise one prompt, print the text. */
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { Presets, SingleBar } from 'cli-progress';
import { InvalidOptionsError } from '../errors';
import { loadModel, type GenerateOptions, type GenerateResult, type Prompt } from '../index';
import type { DiffusionModel } from '../model';
import type { StepEvent } from '../results';
import { DenoiseView } from './denoise-view';
import { parseNumber } from './parse';

interface GenerateFlags {
  model?: string;
  topK?: number;
  topP?: number;
  genLength?: number;
  steps?: number;
  blockLength?: number;
  temperature?: number;
  remasking?: 'low_confidence' | 'random';
  cfgScale?: number;
  cache?: 'none' | 'prefix' | 'dual';
  threshold?: number;
  factor?: number;
  alg?: 'origin' | 'maskgit_plus' | 'topk_margin' | 'entropy' | 'confidence_threshold';
  algTemp?: number;
  eps?: number;
  seed?: number;
  threads?: number;
  device?: 'cpu' | 'cuda' | 'auto';
  chat?: boolean;
  system?: string;
  showDenoising?: boolean;
  quiet?: boolean;
}

function toPrompt(text: string, flags: GenerateFlags): Prompt {
  if (!flags.chat) return text;
  const messages = flags.system ? [{ role: 'system', content: flags.system }] : [];
  return { messages: [...messages, { role: 'user', content: text }] };
}

/** Progress shown on stderr: the live canvas, or a bar; nothing when stderr is not a terminal. */
function makeProgress(
  model: DiffusionModel,
  flags: GenerateFlags,
  totalSteps: number,
  genLength: number,
  byTokens: boolean,
): { onStep: (ev: StepEvent) => void; stop: (last?: StepEvent) => void } {
  const err = process.stderr;
  if (flags.quiet || !err.isTTY) return { onStep: () => undefined, stop: () => undefined };
  if (flags.showDenoising) {
    const view = new DenoiseView(err, model.tokenizer, model.specialTokens, totalSteps);
    return { onStep: (ev) => view.update(ev), stop: (last) => last && view.update(last, true) };
  }
  const bar = new SingleBar(
    {
      stream: err,
      format: `denoising [{bar}] {value}/{total} ${byTokens ? 'tokens' : 'steps'} | {eta_formatted}`,
      hideCursor: true,
    },
    Presets.shades_classic,
  );
  bar.start(byTokens ? genLength : totalSteps, 0);
  return {
    onStep: (ev) => bar.update(byTokens ? Math.round(ev.progress * genLength) : ev.step + 1),
    stop: () => bar.stop(),
  };
}

function parallelOf(flags: GenerateFlags): GenerateOptions['parallel'] {
  if (flags.threshold !== undefined && flags.factor !== undefined) {
    throw new InvalidOptionsError('parallel', 'Give --threshold or --factor, not both');
  }
  if (flags.threshold !== undefined) return { threshold: flags.threshold };
  if (flags.factor !== undefined) return { factor: flags.factor };
  return undefined;
}

function summary(r: GenerateResult): string {
  const t = r.timings;
  return (
    `${r.tokens.length} tokens, ${r.steps} steps, ${(t.totalMs / 1000).toFixed(2)} s ` +
    `(${t.tokensPerSecond.toFixed(1)} tok/s; forward ${t.forwardMs.toFixed(0)} ms, ` +
    `sampling ${t.sampleMs.toFixed(0)} ms)\n`
  );
}

async function run(promptArg: string, flags: GenerateFlags, signal: AbortSignal): Promise<void> {
  const text = promptArg === '-' ? readFileSync(0, 'utf8') : promptArg;
  const model = await loadModel(flags.model, {
    ...(flags.threads === undefined ? {} : { threads: flags.threads }),
    ...(flags.device === undefined ? {} : { device: flags.device }),
  });
  try {
    // Flags win; the model folder's generation_config.json fills what they leave unset.
    const g = model.generationDefaults;
    const dream = model.config.family === 'dream';
    const options: GenerateOptions = {
      genLength: flags.genLength,
      steps: flags.steps,
      blockLength: flags.blockLength,
      temperature: flags.temperature,
      topK: flags.topK,
      topP: flags.topP,
      remasking: flags.remasking,
      cfgScale: flags.cfgScale,
      cache: flags.cache,
      // --threshold is Dream's confidence_threshold for Dream models, else LLaDA's parallel rule
      // (--factor, LLaDA's only, is passed on so that Dream models reject it by name).
      parallel: dream
        ? flags.factor === undefined
          ? undefined
          : { factor: flags.factor }
        : parallelOf(flags),
      threshold: dream ? flags.threshold : undefined,
      alg: flags.alg,
      algTemp: flags.algTemp,
      eps: flags.eps,
      seed: flags.seed,
      signal,
    };
    const genLength = options.genLength ?? g.genLength ?? 128;
    // The folder's steps belong to its own genLength: not used when the flags set another.
    const folderSteps = options.genLength === undefined ? g.steps : undefined;
    const totalSteps =
      model.config.family === 'llama' ? genLength : (options.steps ?? folderSteps ?? genLength);
    // Parallel decoding has no fixed step count: the bar then counts committed tokens.
    const alg = options.alg ?? g.alg;
    const byTokens = dream ? alg === 'confidence_threshold' : options.parallel !== undefined;
    const progress = makeProgress(model, flags, totalSteps, genLength, byTokens);
    let last: StepEvent | undefined;
    let result: GenerateResult;
    try {
      result = await model.generate(toPrompt(text, flags), {
        ...options,
        onStep: (ev) => {
          last = ev;
          progress.onStep(ev);
        },
      });
    } finally {
      progress.stop(last);
    }
    process.stdout.write(`${result.text}\n`);
    if (!flags.quiet) process.stderr.write(summary(result));
  } finally {
    await model.dispose();
  }
}

export function registerGenerate(program: Command, signal: AbortSignal): void {
  program
    .command('generate', { isDefault: true })
    .description('generate text (masked diffusion, or left to right for an AR model)')
    .argument('<prompt>', 'the prompt, or - to read it from stdin')
    .option(
      '-m, --model <dir>',
      'model folder (config.json, *.safetensors, tokenizer.json), or builtin:diffusion / ' +
        'builtin:ar (default builtin:diffusion)',
    )
    .option('-n, --gen-length <n>', 'tokens to generate (default 128)', parseNumber)
    .option('--steps <n>', 'denoising steps (default: gen length)', parseNumber)
    .option(
      '--block-length <n>',
      'semi-autoregressive block length (default: gen length; Dream models: with --cache only)',
      parseNumber,
    )
    .option('-t, --temperature <t>', 'sampling temperature, 0 = greedy (default 0)', parseNumber)
    .addOption(
      new Option(
        '--remasking <mode>',
        'which masks to commit first (default low_confidence)',
      ).choices(['low_confidence', 'random']),
    )
    .option('--cfg-scale <s>', 'classifier-free guidance scale (default 0)', parseNumber)
    .addOption(
      new Option(
        '--cache <mode>',
        'Fast-dLLM KV cache: prefix or dual reuse keys/values across steps (default none)',
      ).choices(['none', 'prefix', 'dual']),
    )
    .option(
      '--threshold <t>',
      'parallel decoding: commit every position with confidence >= t (e.g. 0.9); Dream: the ' +
        'threshold of --alg confidence_threshold',
      parseNumber,
    )
    .option(
      '--factor <f>',
      'parallel decoding: the r-th most confident while >= 1 - f/(r+1)',
      parseNumber,
    )
    .option(
      '--top-k <k>',
      'AR and Dream models: keep the k most likely tokens (default off)',
      parseNumber,
    )
    .option('--top-p <p>', 'AR and Dream models: nucleus sampling mass (default off)', parseNumber)
    .addOption(
      new Option(
        '--alg <alg>',
        "Dream models: which masks to commit first (default entropy, or the folder's)",
      ).choices(['origin', 'maskgit_plus', 'topk_margin', 'entropy', 'confidence_threshold']),
    )
    .option('--alg-temp <t>', 'Dream models: draw the positions at random (default 0)', parseNumber)
    .option('--eps <e>', 'Dream models: last timestep of the schedule (default 0.001)', parseNumber)
    .option('--seed <n>', 'random seed (default 0)', parseNumber)
    .option('--threads <n>', 'CPU threads (default: all cores)', parseNumber)
    .addOption(
      new Option(
        '--device <device>',
        'where to run (default: auto = CUDA if usable, else CPU)',
      ).choices(['cpu', 'cuda', 'auto']),
    )
    .option('--chat', 'wrap the prompt in the model chat template as a user message')
    .option('--system <text>', 'system message (with --chat)')
    .option('--show-denoising', 'redraw the canvas live as masks are filled (on a terminal)')
    .option('-q, --quiet', 'no progress and no summary on stderr')
    .action((prompt: string, flags: GenerateFlags) => run(prompt, flags, signal));
}
