// Our autoregressive baseline against llama.cpp (node-llama-cpp) on identical F16 weights, in
// one run on one machine: for each model and thread count, greedy generation of N tokens from
// the same prompt ids, prompt processing (prefill) timed apart from decoding, and whether the
// two engines pick the same tokens.
//
// Identical weights: each Llama-layout folder is converted once by tools/gguf/write-gguf.mjs
// into a GGUF (matrices F16, norms F32, q/k rows permuted for llama.cpp's rope) and an F16
// safetensors copy holding exactly the same values for difflm (a BF16 -> F16 conversion is not
// always exact: values below F16's normal range lose bits, so both engines get the converted
// values rather than the BF16 originals). The conversion's count of rounded values is printed.
//
// Models: 'builtin' (models/tinystories-llama-7m; its context is 256 positions, so the number
// of generated tokens is capped to fit), '100m' and '1b' (random Llama-layout checkpoints of
// LLaDA-8B proportions, presets bench-100m / bench-1b of tools/fixtures/make_random_llada.py,
// made on the fly in /tmp and never committed). 'tiny-a' and 'tiny-b' are the test fixtures
// test/fixtures/llama-tiny-{a,b} (b: GQA 3:1 and tied embeddings), run on their recorded
// greedy_32 prompt; both engines' tokens are also compared with the recorded reference
// (Hugging Face Llama math in PyTorch), a check of the conversion rather than a timing.
//
// Timing: each engine runs a warm-up, then --repeat timed runs, alternating engines so that
// background load hits both alike; the median is reported.
//   - difflm: wall time of generate({ inputIds }, { genLength: 1 }) is the prefill; decode
//     tokens/s is (N - 1) / (wall(N) - wall(1)); end to end is N / wall(N).
//   - llama.cpp: LlamaContextSequence.evaluate() (tokens in, greedy tokens out: no chat
//     template, no detokenizer), history cleared before each run; the time to the first token is
//     the prefill, the N - 1 tokens after it the decode; EOS does not stop it (yieldEogToken).
// Both use gpuLayers 0 / device 'cpu' and the same thread count (node-llama-cpp: threads
// { ideal: n, min: n } with maxThreads 0, so the count is used as given). llama.cpp keeps its
// own defaults otherwise (F16 KV cache, flash attention 'auto'); timings include each binding's
// per-token JavaScript overhead, as a Node user would see it.
//
// Setup (once; node-llama-cpp is a separate private package so the root `npm ci` never fetches
// its GPU binaries): npm ci --prefix bench/peer
// Usage: node bench/peer-llama-cpp.js [--threads 1,2] [--gen 256] [--models builtin,100m]
//          [--prompt 32] [--repeat 3] [--json FILE]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { loadModel } from '../dist/index.js';
import { convertLlamaFolder } from '../tools/gguf/write-gguf.mjs';
import { lcgPrompt } from './prompt.js';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: 'builtin,100m' },
    threads: { type: 'string', default: '1,2' },
    gen: { type: 'string', default: '256' },
    prompt: { type: 'string', default: '32' },
    repeat: { type: 'string', default: '3' },
    json: { type: 'string' },
  },
});
const root = new URL('..', import.meta.url).pathname;
const threadCounts = values.threads.split(',').map(Number);
const genWanted = Number(values.gen);
const promptLength = Number(values.prompt);
const repeats = Number(values.repeat);
for (const [name, v] of [
  ['gen', genWanted],
  ['prompt', promptLength],
  ['repeat', repeats],
]) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer`);
}
if (genWanted < 2)
  throw new Error('--gen must be at least 2 (decode is timed apart from the first token)');
if (threadCounts.some((t) => !Number.isInteger(t) || t < 1))
  throw new Error('--threads: positive integers');

const BUILTIN_TEXT =
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park ' +
  'with her friends. One day, she saw a big red ball under a tree.';

// ------------------------------------------------------------------------------------------
// Models and their F16 copies
// ------------------------------------------------------------------------------------------

const RANDOM_PRESETS = { '100m': 'bench-100m', '1b': 'bench-1b' };
const FIXTURES = { 'tiny-a': 'llama-tiny-a', 'tiny-b': 'llama-tiny-b' };

function sourceFolder(key) {
  if (key === 'builtin') return join(root, 'models/tinystories-llama-7m');
  if (FIXTURES[key]) return join(root, 'test/fixtures', FIXTURES[key]);
  const preset = RANDOM_PRESETS[key];
  if (!preset) {
    const known = ['builtin', ...Object.keys(RANDOM_PRESETS), ...Object.keys(FIXTURES)];
    throw new Error(`unknown model ${key} (${known.join(', ')})`);
  }
  const dir = `/tmp/difflm-bench-llama-${preset}-bf16`;
  if (!existsSync(join(dir, 'config.json'))) {
    mkdirSync(dir, { recursive: true });
    const args = [join(root, 'tools/fixtures/make_random_llada.py'), '--preset', preset];
    args.push('--layout', 'llama', '--dtype', 'bf16', '--out', dir);
    const r = spawnSync('/usr/bin/python3', args, { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`make_random_llada.py ${preset} failed`);
  }
  return dir;
}

/** GGUF + F16 safetensors copy of `src`, made once (again when the source or the converter is newer). */
function f16Pair(key, src) {
  const dir = `/tmp/difflm-peer-${key}`;
  const gguf = join(dir, 'model-f16.gguf');
  const f16Dir = join(dir, 'f16');
  const summaryFile = join(dir, 'conversion.json');
  const converter = join(root, 'tools/gguf');
  const srcTime = Math.max(
    statSync(join(src, 'config.json')).mtimeMs,
    statSync(join(src, 'model.safetensors')).mtimeMs,
    ...readdirSync(converter).map((f) => statSync(join(converter, f)).mtimeMs),
  );
  const fresh =
    existsSync(summaryFile) &&
    existsSync(gguf) &&
    existsSync(join(f16Dir, 'model.safetensors')) &&
    statSync(summaryFile).mtimeMs > srcTime;
  if (fresh) return { gguf, f16Dir, conversion: JSON.parse(readFileSync(summaryFile, 'utf8')) };
  mkdirSync(dir, { recursive: true });
  const conversion = convertLlamaFolder(src, gguf, { f16Dir, name: `difflm-${key}` });
  writeFileSync(summaryFile, JSON.stringify(conversion, null, 2) + '\n');
  return { gguf, f16Dir, conversion };
}

/** The recorded greedy_32 case of a Llama test fixture: { prompt_ids, new_ids }. */
function fixtureCase(dir) {
  const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8'));
  return expected.greedy.find((c) => c.name === 'greedy_32');
}

// ------------------------------------------------------------------------------------------
// The two engines
// ------------------------------------------------------------------------------------------

/** A pause between runs, so that threads still spinning after one engine's run (ggml's
 * thread pool polls before it sleeps) are asleep before the other engine is timed. */
const settle = () => new Promise((done) => setTimeout(done, 50));

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Options that make difflm's AR decoding greedy and EOS-blind (generation_config.json aside). */
const GREEDY = { temperature: 0, topK: 0, topP: 1, stopAtEos: false };
let stopAtEosAccepted = true;

async function oursGenerate(model, prompt, genLength) {
  const call = (opts) => model.generate({ inputIds: prompt }, { ...opts, genLength });
  if (stopAtEosAccepted) {
    try {
      return await call(GREEDY);
    } catch (err) {
      if (!/stopAtEos/.test(String(err?.message))) throw err;
      stopAtEosAccepted = false;
      console.warn('difflm rejected stopAtEos; generating without it (may stop at EOS)');
    }
  }
  const { stopAtEos: _, ...rest } = GREEDY;
  return call(rest);
}

async function oursRun(model, prompt, genLength) {
  const t0 = performance.now();
  const r = await oursGenerate(model, prompt, genLength);
  return { ms: performance.now() - t0, tokens: r.tokens, native: r.timings };
}

async function llamaRun(sequence, prompt, genLength) {
  await sequence.clearHistory();
  const tokens = [];
  const t0 = performance.now();
  let tFirst = 0;
  const it = sequence.evaluate(prompt, { temperature: 0, yieldEogToken: true });
  for await (const token of it) {
    if (tokens.length === 0) tFirst = performance.now();
    tokens.push(token);
    if (tokens.length >= genLength) break;
  }
  const t1 = performance.now();
  return { prefillMs: tFirst - t0, decodeMs: t1 - tFirst, ms: t1 - t0, tokens };
}

function firstDivergence(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? null : n;
}

// ------------------------------------------------------------------------------------------
// Main
// ------------------------------------------------------------------------------------------

const peerEntry = join(root, 'bench/peer/node_modules/node-llama-cpp/dist/index.js');
if (!existsSync(peerEntry)) {
  console.error('node-llama-cpp is not installed: run `npm ci --prefix bench/peer` first');
  process.exit(1);
}
const { getLlama } = await import(pathToFileURL(peerEntry).href);
const peerVersion = JSON.parse(
  readFileSync(join(root, 'bench/peer/node_modules/node-llama-cpp/package.json'), 'utf8'),
).version;
const llama = await getLlama({
  gpu: false,
  build: 'never',
  maxThreads: 0, // use each context's thread count as given
  logLevel: 'error',
  progressLogs: false,
});

const env = {
  cpu: cpus()[0]?.model,
  logicalCpus: cpus().length,
  node: process.version,
  nodeLlamaCpp: peerVersion,
  llamaCpp: llama.llamaCppRelease ?? null,
  llamaCppBuild: llama.buildType,
  llamaCppSystemInfo: llama.systemInfo ?? null,
};
console.log(
  `${env.cpu}, ${env.logicalCpus} logical CPUs, node ${env.node}, node-llama-cpp ${peerVersion}` +
    (env.llamaCpp ? ` (llama.cpp ${env.llamaCpp.release ?? JSON.stringify(env.llamaCpp)})` : '') +
    `; repeats ${repeats}, median shown`,
);

const results = [];
for (const key of values.models.split(',')) {
  const src = sourceFolder(key);
  const { gguf, f16Dir, conversion } = f16Pair(key, src);
  const c = conversion.conversion;
  console.log(
    `\n== ${key}: ${conversion.parameters.toLocaleString('en-US')} parameters, F16 ` +
      `(from ${conversion.sourceDtypes.join('+')}: ` +
      (c.exact
        ? 'every value exact'
        : `${c.inexactValues} values rounded, max abs change ${c.maxAbsDiff.toExponential(2)}`) +
      '; both engines get the rounded values)',
  );
  const peerModel = await llama.loadModel({ modelPath: gguf, gpuLayers: 0 });
  for (const threads of threadCounts) {
    const ours = await loadModel(f16Dir, { device: 'cpu', threads });
    const cfg = ours.config;
    const reference = FIXTURES[key] ? fixtureCase(src) : null;
    const prompt = reference
      ? reference.prompt_ids
      : key === 'builtin'
        ? ours.tokenizer.encode(BUILTIN_TEXT, { addSpecialTokens: true }).slice(0, promptLength)
        : lcgPrompt(Number(cfg.raw.bos_token_id), cfg.vocabSize - 6, promptLength);
    const gen = reference
      ? reference.new_ids.length
      : Math.min(genWanted, cfg.maxSequenceLength - prompt.length);
    const context = await peerModel.createContext({
      contextSize: prompt.length + gen,
      batchSize: Math.max(prompt.length, 1),
      threads: { ideal: threads, min: threads },
    });
    const sequence = context.getSequence();

    await oursRun(ours, prompt, Math.min(8, gen)); // warm-up
    await llamaRun(sequence, prompt, Math.min(8, gen));
    const runs = { oursPrefill: [], oursFull: [], oursNative: [], llama: [] };
    let oursTokens = [];
    let llamaTokens = [];
    for (let r = 0; r < repeats; r++) {
      await settle();
      runs.oursPrefill.push((await oursRun(ours, prompt, 1)).ms);
      await settle();
      const full = await oursRun(ours, prompt, gen);
      runs.oursFull.push(full.ms);
      runs.oursNative.push(full.native.totalMs);
      oursTokens = full.tokens;
      await settle();
      const l = await llamaRun(sequence, prompt, gen);
      runs.llama.push(l);
      llamaTokens = l.tokens;
    }
    const oursPrefillMs = median(runs.oursPrefill);
    const oursFullMs = median(runs.oursFull);
    const oursDecodeMs = median(runs.oursFull.map((ms, i) => ms - runs.oursPrefill[i]));
    const llamaPrefillMs = median(runs.llama.map((l) => l.prefillMs));
    const llamaDecodeMs = median(runs.llama.map((l) => l.decodeMs));
    const llamaFullMs = median(runs.llama.map((l) => l.ms));
    const row = {
      model: key,
      threads,
      llamaThreads: context.currentThreads,
      llamaFlashAttention: context.flashAttention,
      promptTokens: prompt.length,
      genTokens: gen,
      oursTokensGenerated: oursTokens.length,
      ours: {
        prefillMs: oursPrefillMs,
        decodeTokensPerSecond: ((gen - 1) * 1000) / oursDecodeMs,
        endToEndTokensPerSecond: (gen * 1000) / oursFullMs,
        nativeTotalMs: median(runs.oursNative),
      },
      llamaCpp: {
        prefillMs: llamaPrefillMs,
        decodeTokensPerSecond: ((gen - 1) * 1000) / llamaDecodeMs,
        endToEndTokensPerSecond: (gen * 1000) / llamaFullMs,
      },
      firstDivergence: firstDivergence(oursTokens, llamaTokens),
      reference: reference && {
        oursFirstDivergence: firstDivergence(oursTokens, reference.new_ids),
        llamaCppFirstDivergence: firstDivergence(llamaTokens.map(Number), reference.new_ids),
      },
      oursTokens,
      llamaTokens: llamaTokens.map(Number),
    };
    row.ratio = {
      decode: row.ours.decodeTokensPerSecond / row.llamaCpp.decodeTokensPerSecond,
      endToEnd: row.ours.endToEndTokensPerSecond / row.llamaCpp.endToEndTokensPerSecond,
      prefill: llamaPrefillMs / oursPrefillMs,
    };
    results.push(row);
    const agree =
      row.firstDivergence === null
        ? `all ${gen} greedy tokens agree`
        : `tokens diverge at index ${row.firstDivergence} of ${gen}`;
    console.log(
      `threads ${threads} (llama.cpp uses ${row.llamaThreads}), prompt ${prompt.length}, ` +
        `gen ${gen}: ${agree}`,
    );
    if (row.reference) {
      const vs = (i) => (i === null ? 'same tokens' : `diverges at ${i}`);
      console.log(
        `  vs the fixture's reference greedy tokens: difflm ${vs(row.reference.oursFirstDivergence)}` +
          `, llama.cpp ${vs(row.reference.llamaCppFirstDivergence)}`,
      );
    }
    const fmt = (x) => x.toFixed(1).padStart(8);
    console.log('              prefill ms  decode tok/s  end-to-end tok/s');
    for (const [name, v] of [
      ['difflm', row.ours],
      ['llama.cpp', row.llamaCpp],
    ]) {
      console.log(
        `  ${name.padEnd(10)} ${fmt(v.prefillMs)}    ${fmt(v.decodeTokensPerSecond)}      ` +
          `${fmt(v.endToEndTokensPerSecond)}`,
      );
    }
    console.log(
      `  ours / llama.cpp: decode ${row.ratio.decode.toFixed(2)}x, end to end ` +
        `${row.ratio.endToEnd.toFixed(2)}x, prefill speed ${row.ratio.prefill.toFixed(2)}x`,
    );
    await context.dispose();
    await ours.dispose();
  }
  await peerModel.dispose();
}
await llama.dispose();

if (values.json) {
  const settings = { threads: threadCounts, gen: genWanted, prompt: promptLength, repeats };
  const out = { settings, environment: env, stopAtEosAccepted, results };
  writeFileSync(values.json, JSON.stringify(out, null, 2) + '\n');
  console.log(`\nwrote ${values.json}`);
}
