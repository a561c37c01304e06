// Fast diffusion decoding against the autoregressive baseline, end to end, in one run on one
// machine: for each model pair and genLength, tokens/s and time to the full answer of masked
// diffusion decoding (naive, + prefix cache, + dual cache, + dual cache with parallel threshold
// 0.9) and of the AR model with its KV cache, printed as ratios.
//
// Model pairs: the built-in models (trained; their context is 256 positions, so genLength is
// capped to fit, and agreement with naive decoding plus the AR model's perplexity of each output
// are reported), and random LLaDA-layout + Llama-layout models of ~100M and ~1B parameters made
// on the fly in /tmp by tools/fixtures/make_random_llada.py (never committed).
//
// Usage: node bench/decode.js [--models builtin,100m,1b] [--gen 64,256,1024] [--threads 2]
//          [--budget 240] [--prompt-length 32] [--modes naive,+prefix,...] [--json FILE]
// A run whose estimated time (from a measured forward rate and the rows it must compute)
// exceeds --budget seconds is skipped and reported as skipped, never extrapolated.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel } from '../dist/index.js';
import { lcgPrompt } from './prompt.js';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: 'builtin,100m,1b' },
    'prompt-length': { type: 'string', default: '32' },
    modes: { type: 'string' }, // e.g. naive,+prefix: only these DLM variants
    gen: { type: 'string', default: '64,256,1024' },
    threads: { type: 'string', default: '2' },
    budget: { type: 'string', default: '240' },
    json: { type: 'string' },
  },
});
const threads = Number(values.threads);
const budgetSec = Number(values.budget);
const root = new URL('..', import.meta.url).pathname;
const BLOCK = 32;
const PROMPT_LENGTH = Number(values['prompt-length']); // random models' prompt

/** The diffusion decoding variants, in the order the issue lists them. */
const MODES = [
  { name: 'naive', options: { cache: 'none' } },
  { name: '+prefix', options: { cache: 'prefix' } },
  { name: '+dual', options: { cache: 'dual' } },
  { name: '+dual+thr0.9', options: { cache: 'dual', parallel: { threshold: 0.9 } } },
];

/** For the trained built-in models: how tokens per step and quality move with the threshold. */
const THRESHOLD_SWEEP = [0.7, 0.5, 0.3].map((t) => ({
  name: `+dual+thr${t}`,
  options: { cache: 'dual', parallel: { threshold: t } },
}));

/** Random checkpoints: make_random_llada.py presets of the two layouts. */
const RANDOM = {
  '100m': 'bench-100m',
  '1b': 'bench-1b',
};

function randomModel(preset, layout) {
  const dir = `/tmp/difflm-bench-${layout}-${preset}-bf16`;
  if (!existsSync(join(dir, 'config.json'))) {
    mkdirSync(dir, { recursive: true });
    const args = [join(root, 'tools/fixtures/make_random_llada.py'), '--preset', preset];
    args.push('--layout', layout, '--dtype', 'bf16', '--out', dir);
    const r = spawnSync('/usr/bin/python3', args, { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`make_random_llada.py ${preset} ${layout} failed`);
  }
  return dir;
}

/** Canvas rows each variant computes through the transformer (for the time estimate). */
function rowsFor(mode, P, G) {
  const L = P + G;
  const blocks = G / BLOCK;
  if (mode.options.cache === 'none') return G * L;
  let rows = 0;
  for (let b = 0; b < blocks; b++) {
    const start = P + b * BLOCK;
    rows += L + (BLOCK - 1) * (mode.options.cache === 'prefix' ? L - start : BLOCK);
  }
  return rows; // fixed schedule; parallel runs are at most this
}

async function timed(fn) {
  const t0 = performance.now();
  const value = await fn();
  return { value, seconds: (performance.now() - t0) / 1e3 };
}

async function forwardRowsPerSec(model, ids) {
  await model.logits({ inputIds: ids });
  const { seconds } = await timed(() => model.logits({ inputIds: ids }));
  return ids.length / seconds;
}

function agreement(a, b) {
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / a.length;
}

/** The AR model's perplexity of `tokens` (cut at EOS/EOT) following `prompt`. */
async function arPerplexity(ar, prompt, tokens, stop) {
  const end = tokens.findIndex((t) => stop.includes(t));
  const out = end < 0 ? tokens : tokens.slice(0, end);
  if (out.length === 0) return null;
  const whole = await ar.score({ inputIds: [...prompt, ...out] });
  const head = prompt.length > 1 ? (await ar.score({ inputIds: prompt })).nll : 0;
  return Math.exp((whole.nll - head) / out.length);
}

async function benchPair(name, dlm, ar, prompt, genLengths, quality) {
  const only = values.modes?.split(',');
  const modes = (quality ? [...MODES, ...THRESHOLD_SWEEP] : MODES).filter(
    (m) => !only || only.includes(m.name),
  );
  const maxSeq = Math.min(dlm.config.maxSequenceLength, ar.config.maxSequenceLength);
  const rowsPerSec = await forwardRowsPerSec(dlm, [
    ...prompt,
    ...new Array(Math.min(256, maxSeq - prompt.length)).fill(dlm.specialTokens.mask),
  ]);
  const results = [];
  const done = new Set();
  for (const wanted of genLengths) {
    const room = Math.floor((maxSeq - prompt.length) / BLOCK) * BLOCK;
    const G = Math.min(wanted, room);
    if (G < BLOCK || done.has(G)) continue; // capped lengths run once
    done.add(G);
    const row = { model: name, genLength: G, requested: wanted, promptLength: prompt.length };
    const base = { genLength: G, steps: G, blockLength: BLOCK, temperature: 0 };
    // The AR baseline: exactly G tokens, greedy, with its KV cache.
    await ar.generate({ inputIds: prompt }, { genLength: 8, temperature: 0, stopAtEos: false });
    const arRun = await timed(() =>
      ar.generate({ inputIds: prompt }, { genLength: G, temperature: 0, stopAtEos: false }),
    );
    row.ar = { seconds: arRun.seconds, tokensPerSec: G / arRun.seconds };
    if (quality) row.ar.perplexity = await arPerplexity(ar, prompt, arRun.value.tokens, quality);
    let naiveTokens = null;
    for (const mode of modes) {
      const est = rowsFor(mode, prompt.length, G) / rowsPerSec;
      if (est > budgetSec) {
        row[mode.name] = { skipped: `estimated ${est.toFixed(0)} s > budget ${budgetSec} s` };
        continue;
      }
      const run = await timed(() =>
        dlm.generate({ inputIds: prompt }, { ...base, ...mode.options }),
      );
      const r = run.value;
      const entry = {
        seconds: run.seconds,
        tokensPerSec: G / run.seconds,
        steps: r.steps,
        forwards: r.forwardPasses,
        tokensPerStep: G / r.steps,
        forwardMs: r.timings.forwardMs,
        sampleMs: r.timings.sampleMs,
        vsAr: G / run.seconds / row.ar.tokensPerSec,
      };
      if (mode.name === 'naive') naiveTokens = r.tokens;
      else if (naiveTokens) entry.agreementWithNaive = agreement(r.tokens, naiveTokens);
      if (quality) {
        entry.arPerplexity = await arPerplexity(ar, prompt, r.tokens, quality);
        entry.text = r.text.slice(0, 160);
      }
      row[mode.name] = entry;
    }
    const naive = row.naive;
    for (const mode of modes.slice(1)) {
      const e = row[mode.name];
      if (naive?.seconds && e?.seconds) e.vsNaive = naive.seconds / e.seconds;
    }
    print(row, modes);
    results.push(row);
  }
  return { rowsPerSec, results };
}

function fmt(x, digits = 2) {
  return typeof x === 'number' ? x.toFixed(digits) : String(x);
}

function print(row, modes) {
  console.log(
    `\n${row.model}  genLength ${row.genLength}${row.requested !== row.genLength ? ` (asked ${row.requested}; context)` : ''}, prompt ${row.promptLength}, block ${BLOCK}, T=0`,
  );
  console.log(
    `  AR (KV cache)        ${fmt(row.ar.tokensPerSec, 1).padStart(8)} tok/s  ${fmt(row.ar.seconds)} s` +
      (row.ar.perplexity ? `  ppl ${fmt(row.ar.perplexity)}` : ''),
  );
  for (const mode of modes) {
    const e = row[mode.name];
    if (!e) continue;
    if (e.skipped) {
      console.log(`  DLM ${mode.name.padEnd(16)} skipped (${e.skipped})`);
      continue;
    }
    const extra = [
      `${fmt(e.tokensPerStep)} tok/step`,
      `x${fmt(e.vsAr, 3)} AR`,
      e.vsNaive ? `x${fmt(e.vsNaive)} naive` : '',
      e.agreementWithNaive !== undefined ? `agree ${fmt(e.agreementWithNaive)}` : '',
      e.arPerplexity ? `ppl ${fmt(e.arPerplexity)}` : '',
    ].filter(Boolean);
    console.log(
      `  DLM ${mode.name.padEnd(16)} ${fmt(e.tokensPerSec, 1).padStart(8)} tok/s  ${fmt(e.seconds)} s  ${extra.join('  ')}`,
    );
  }
}

const genLengths = values.gen.split(',').map(Number);
const out = {
  machine: `${cpus()[0]?.model ?? 'cpu'} x${cpus().length}`,
  date: new Date().toISOString(),
  command: `node bench/decode.js ${process.argv.slice(2).join(' ')}`.trim(),
  threads,
  block: BLOCK,
  budgetSec,
  pairs: {},
};
for (const which of values.models.split(',')) {
  let dlm, ar, prompt, quality;
  if (which === 'builtin') {
    dlm = await loadModel('builtin:diffusion', { threads });
    ar = await loadModel('builtin:ar', { threads });
    const text =
      'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends. One day,';
    prompt = ar.tokenizer.encode(text);
    quality = [ar.specialTokens.eos, ar.specialTokens.eot].filter((t) => t >= 0);
  } else if (RANDOM[which]) {
    dlm = await loadModel(randomModel(RANDOM[which], 'llada'), { threads });
    ar = await loadModel(randomModel(RANDOM[which], 'llama'), { threads });
    prompt = lcgPrompt(
      dlm.config.raw.bos_token_id ?? 0,
      Math.min(8000, dlm.config.vocabSize),
      PROMPT_LENGTH,
    );
  } else {
    throw new Error(`unknown model set ${which} (builtin, 100m or 1b)`);
  }
  out.pairs[which] = await benchPair(which, dlm, ar, prompt, genLengths, quality);
  await dlm.dispose();
  await ar.dispose();
}
if (values.json) writeFileSync(values.json, JSON.stringify(out, null, 2));
