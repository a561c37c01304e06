// End to end on a random LLaDA-layout checkpoint of ~110M parameters (made on the fly, never
// committed): forward positions/s, one full generate, and the authors' PyTorch code on the same
// checkpoint and settings in the same run, with the speed ratio and a token comparison.
// Usage: node bench/generate.js [--threads 2] [--dtype f32|bf16] [--torch]
//          [--llada-repo DIR --fastdllm-repo DIR] [--json FILE]
// --torch needs Debian's python3-torch at /usr/bin/python3 and the two reference checkouts
// (or bare mirrors), see tools/fixtures/README.md.
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
    'llada-repo': { type: 'string', default: '/work/.mirror/ML-GSAI+LLaDA/repo' },
    'fastdllm-repo': { type: 'string', default: '/work/.mirror/NVlabs+Fast-dLLM/repo' },
    json: { type: 'string' },
  },
});
const threads = Number(values.threads);
const root = new URL('..', import.meta.url).pathname;
const settings = { promptLength: 32, genLength: 128, steps: 128, blockLength: 32 };

// 1. The checkpoint (seeded, so every run benchmarks the same weights).
const dir = `/tmp/difflm-bench-llada-110m-${values.dtype}`;
if (!existsSync(join(dir, 'config.json'))) {
  mkdirSync(dir, { recursive: true });
  const r = spawnSync(
    'python3',
    [
      join(root, 'tools/fixtures/make_random_llada.py'),
      '--preset',
      'bench-110m',
      '--dtype',
      values.dtype,
      '--out',
      dir,
    ],
    { stdio: 'inherit' },
  );
  if (r.status !== 0) throw new Error('make_random_llada.py failed');
}

// 2. A fixed prompt: bos then 31 ids from a seeded LCG.
const model = await loadModel(dir, { threads });
const prompt = lcgPrompt(model.config.raw.bos_token_id ?? 0, 8000, settings.promptLength);
const promptFile = join(dir, 'bench-prompt.json');
writeFileSync(promptFile, JSON.stringify(prompt));

// 3. Forward positions per second over the full canvas (prompt + genLength positions).
const canvas = [...prompt, ...new Array(settings.genLength).fill(model.specialTokens.mask)];
await model.logits({ inputIds: canvas });
const fwdRuns = 5;
let t0 = performance.now();
for (let i = 0; i < fwdRuns; i++) await model.logits({ inputIds: canvas });
const forwardMs = (performance.now() - t0) / fwdRuns;

// 4. One full generate.
const opts = {
  genLength: settings.genLength,
  steps: settings.steps,
  blockLength: settings.blockLength,
};
t0 = performance.now();
const ours = await model.generate({ inputIds: prompt }, opts);
const oursSec = (performance.now() - t0) / 1e3;
await model.dispose();

const result = {
  machine: `${cpus()[0]?.model ?? 'cpu'} x${cpus().length}`,
  date: new Date().toISOString(),
  dtype: values.dtype,
  threads,
  params: null,
  settings,
  forward: {
    positions: canvas.length,
    ms: forwardMs,
    positionsPerSec: (canvas.length / forwardMs) * 1e3,
  },
  difflm: { seconds: oursSec, msPerStep: (oursSec * 1e3) / ours.steps, timings: ours.timings },
};

// 5. The authors' code on the same checkpoint and settings.
if (values.torch) {
  const torchDtype = values.dtype === 'bf16' ? 'bfloat16' : 'float32';
  const r = spawnSync(
    '/usr/bin/python3',
    [
      join(root, 'bench/torch/llada_generate_bench.py'),
      '--llada-repo',
      values['llada-repo'],
      '--fastdllm-repo',
      values['fastdllm-repo'],
      '--model',
      dir,
      '--prompt-ids',
      promptFile,
      '--gen-length',
      String(settings.genLength),
      '--steps',
      String(settings.steps),
      '--block-length',
      String(settings.blockLength),
      '--threads',
      String(threads),
      '--dtype',
      torchDtype,
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20 },
  );
  if (r.status !== 0) throw new Error('the PyTorch reference failed');
  const ref = JSON.parse(r.stdout);
  const same = JSON.stringify(ref.tokens) === JSON.stringify(ours.tokens);
  let firstDiff = -1;
  if (!same) firstDiff = ours.tokens.findIndex((t, i) => t !== ref.tokens[i]);
  result.torch = { seconds: ref.seconds, dtype: torchDtype, environment: ref.environment };
  result.speedup = ref.seconds / oursSec;
  result.identicalTokens = same;
  result.firstDifferentToken = firstDiff;
}

console.log(JSON.stringify(result, null, 2));
if (values.json) writeFileSync(values.json, JSON.stringify(result, null, 2));
