// End to end on a random Dream-layout checkpoint of ~100M parameters (made on the fly, never
// committed): forward positions/s, one full generate with Dream's sampler, and the authors'
// PyTorch code (DreamModel.diffusion_generate) on the same checkpoint and settings in the same
// run, with the speed ratio and a token comparison. The Dream counterpart of bench/generate.js.
// Usage: node bench/generate-dream.js [--threads 2] [--dtype f32|bf16] [--torch]
//          [--cache none|prefix|dual] [--block-length 32]
//          [--fastdllm-repo DIR] [--torch-omp-wait-policy auto|PASSIVE|ACTIVE|unset] [--json FILE]
// --cache prefix|dual: Fast-dLLM's block-cached decoding on both sides (the reference then runs
// generation_utils_block.py).
// --torch needs Debian's python3-torch at /usr/bin/python3 and a Fast-dLLM checkout (or bare
// mirror), see tools/fixtures/README.md. In f32 the tokens should be identical; in bf16 the
// reference computes in bf16 (difflm keeps float32 activations), so the ids may differ.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel } from '../dist/index.js';
import { lcgPrompt } from './prompt.js';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    dtype: { type: 'string', default: 'f32' },
    torch: { type: 'boolean', default: false },
    'fastdllm-repo': { type: 'string', default: '/work/.mirror/NVlabs+Fast-dLLM/repo' },
    // OMP_WAIT_POLICY of the reference process: auto (PASSIVE in f32, unset in bf16), PASSIVE,
    // ACTIVE or unset; see bench/torch/dream_generate_bench.py (with libgomp's default, torch's
    // idle OpenMP threads spin and slow OpenBLAS's f32 sgemm several-fold on a 2-core machine).
    'torch-omp-wait-policy': { type: 'string', default: 'auto' },
    cache: { type: 'string', default: 'none' },
    'block-length': { type: 'string', default: '32' },
    json: { type: 'string' },
  },
});
if (!['none', 'prefix', 'dual'].includes(values.cache)) {
  throw new Error('--cache must be none, prefix or dual');
}
if (!['f32', 'bf16'].includes(values.dtype)) throw new Error('--dtype must be f32 or bf16');
const threads = Number(values.threads);
const root = new URL('..', import.meta.url).pathname;
const settings = {
  promptLength: 32,
  genLength: 128,
  steps: 128,
  alg: 'entropy',
  algTemp: 0,
  eps: 1e-3,
  temperature: 0,
  ...(values.cache === 'none'
    ? {}
    : { cache: values.cache, blockLength: Number(values['block-length']) }),
};

/** Runs a command; its stdout (stderr passes through). Throws when it fails. */
function run(cmd, args, what) {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status})`);
  return r.stdout;
}

/** Mean milliseconds of `fn` over `runs` calls, after one untimed call. */
async function meanMs(fn, runs) {
  await fn();
  const start = performance.now();
  for (let i = 0; i < runs; i++) await fn();
  return (performance.now() - start) / runs;
}

// 1. The checkpoint (seeded, so every run benchmarks the same weights), made once per dtype.
const dir = `/tmp/difflm-bench-dream-110m-${values.dtype}`;
if (!existsSync(join(dir, 'config.json'))) {
  mkdirSync(dir, { recursive: true });
  const script = join(root, 'tools/fixtures/make_random_dream.py');
  const made = run(
    'python3',
    [script, '--preset', 'bench-110m', '--dtype', values.dtype, '--out', dir],
    script,
  );
  process.stderr.write(made);
}

// 2. A fixed prompt: bos (<|endoftext|>) then 31 ids from a seeded LCG.
const model = await loadModel(dir, { threads });
const prompt = lcgPrompt(model.config.raw.bos_token_id ?? 0, 8000, settings.promptLength);
const promptFile = join(dir, 'bench-prompt.json');
writeFileSync(promptFile, JSON.stringify(prompt));

// 3. Forward positions per second over the full canvas (prompt + genLength masks), the
// forward every Dream step runs.
const canvas = prompt.concat(
  Array.from({ length: settings.genLength }, () => model.specialTokens.mask),
);
const forwardMs = await meanMs(() => model.logits({ inputIds: canvas }), 5);

// 4. One full generate with Dream's sampler.
const { promptLength: _, ...opts } = settings;
const genStart = performance.now();
const ours = await model.generate({ inputIds: prompt }, opts);
const oursSec = (performance.now() - genStart) / 1e3;
await model.dispose();

const result = {
  machine: `${cpus()[0]?.model ?? 'cpu'} x${cpus().length}`,
  date: new Date().toISOString(),
  family: 'dream',
  dtype: values.dtype,
  threads,
  settings,
  forward: {
    positions: canvas.length,
    ms: forwardMs,
    positionsPerSec: (canvas.length * 1e3) / forwardMs,
  },
  difflm: {
    seconds: oursSec,
    msPerStep: (oursSec * 1e3) / ours.steps,
    forwardPasses: ours.forwardPasses,
    timings: ours.timings,
  },
};

// 5. The authors' code on the same checkpoint, prompt and settings.
if (values.torch) {
  const torchDtype = { f32: 'float32', bf16: 'bfloat16' }[values.dtype];
  const flags = {
    'fastdllm-repo': values['fastdllm-repo'],
    model: dir,
    'prompt-file': promptFile,
    'gen-length': settings.genLength,
    steps: settings.steps,
    alg: settings.alg,
    eps: settings.eps,
    threads,
    dtype: torchDtype,
    'omp-wait-policy': values['torch-omp-wait-policy'],
    cache: values.cache,
    'block-length': values['block-length'],
  };
  const script = join(root, 'bench/torch/dream_generate_bench.py');
  const argv = [script, ...Object.entries(flags).flatMap(([k, v]) => [`--${k}`, String(v)])];
  const ref = JSON.parse(run('/usr/bin/python3', argv, 'the PyTorch reference'));
  const diffs = ours.tokens.flatMap((t, i) => (t === ref.tokens[i] ? [] : [i]));
  result.torch = {
    seconds: ref.seconds,
    nfe: ref.nfe,
    dtype: torchDtype,
    reference: ref.reference.fastdllm,
    environment: ref.environment,
  };
  result.speedup = ref.seconds / oursSec;
  result.identicalTokens = diffs.length === 0 && ref.tokens.length === ours.tokens.length;
  result.firstDifferentToken = diffs.length ? diffs[0] : -1;
  if (!result.identicalTokens) {
    result.differentTokens = diffs.length;
    result.tokens = { difflm: ours.tokens, torch: ref.tokens };
  }
}

console.log(JSON.stringify(result, null, 2));
if (values.json) writeFileSync(values.json, JSON.stringify(result, null, 2));
