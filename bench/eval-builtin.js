// Held-out metrics and unedited samples of the built-in models, for their model cards:
// `node bench/eval-builtin.js [--make-slice]`. Writes models/<name>/eval.json and prints the
// numbers. The held-out text is a committed slice of TinyStories' validation split
// (test/fixtures/tinystories-heldout.json), which `--make-slice` cuts from shared/data.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BUILTIN_MODELS, loadModel } from '../dist/index.js';

const root = new URL('..', import.meta.url).pathname;
const sliceFile = join(root, 'test/fixtures/tinystories-heldout.json');
const { values } = parseArgs({ options: { 'make-slice': { type: 'boolean', default: false } } });

// Paragraphs of the validation file grouped into chunks of at most ~700 characters (well under
// the models' 256-token context), the first 48 of them; the first 4 form the test slice.
if (values['make-slice']) {
  const src = join(root, '../shared/data/corpus/tinystories/tinystories_valid_head.txt');
  const paragraphs = readFileSync(src, 'utf8')
    .split(/\n\n+/)
    .filter((p) => p.trim() !== '');
  const chunks = [];
  let cur = '';
  for (const p of paragraphs) {
    if (cur !== '' && cur.length + p.length + 2 > 700) {
      chunks.push(cur);
      cur = '';
    }
    cur = cur === '' ? p.trim() : `${cur}\n\n${p.trim()}`;
    if (chunks.length === 48) break;
  }
  writeFileSync(
    sliceFile,
    JSON.stringify(
      {
        source:
          'shared/data/corpus/tinystories/tinystories_valid_head.txt (TinyStories validation split, roneneldan/TinyStories)',
        license: 'CDLA-Sharing-1.0',
        how: 'paragraphs split at blank lines, grouped in order into chunks of at most ~700 characters; the first 48 chunks',
        chunks,
      },
      null,
      2,
    ) + '\n',
  );
  console.log(`wrote ${chunks.length} chunks to ${sliceFile}`);
}

const slice = JSON.parse(readFileSync(sliceFile, 'utf8')).chunks;
/** Mean NLL per token over the chunks (each scored on its own: BOS + text). */
async function scoreChunks(model, chunks, opts) {
  let nll = 0;
  let tokens = 0;
  for (const text of chunks) {
    const r = await model.score(text, opts);
    nll += r.nll;
    tokens += r.tokens;
  }
  return {
    chunks: chunks.length,
    tokens,
    nllPerToken: nll / tokens,
    perplexity: Math.exp(nll / tokens),
  };
}

// Fixed-seed generations whose ids the tests check (a regression guard on the whole stack).
const REGRESSION = {
  diffusion: {
    prompt: 'Once upon a time',
    options: { genLength: 32, steps: 32, blockLength: 16, temperature: 0.7, seed: 7 },
  },
  ar: {
    prompt: 'Once upon a time',
    options: { genLength: 32, temperature: 0.8, topK: 40, seed: 7 },
  },
};
const regression = {};

/**
 * The regression generation's ids under every GEMM path this CPU has (each path rounds
 * differently, so each has its own record), each in a child process with DIFFLM_GEMM_PATH set.
 */
function regressionIds(kind) {
  const { prompt, options } = REGRESSION[kind];
  const paths = createRequire(import.meta.url)('node-gyp-build')(root).bench.gemmPaths();
  const byPath = {};
  for (const path of paths) {
    const script = `
      import { loadModel } from ${JSON.stringify(join(root, 'dist/index.js'))};
      const m = await loadModel('builtin:${kind}', { threads: 2 });
      const r = await m.generate(${JSON.stringify(prompt)}, ${JSON.stringify(options)});
      console.log(JSON.stringify(r.tokens));
      await m.dispose();`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, DIFFLM_GEMM_PATH: path },
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`regression run on ${path} failed: ${r.stderr}`);
    byPath[path] = JSON.parse(r.stdout);
  }
  return byPath;
}

/** The model card, from train_log.json (written by the training script) and this evaluation. */
function modelCard(kind, name, model, ev) {
  const log = JSON.parse(readFileSync(join(root, 'models', name, 'train_log.json'), 'utf8'));
  const c = model.config;
  const diffusion = kind === 'diffusion';
  const h = ev.heldout;
  const settings = Object.entries(ev.sampleSettings)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  return `# ${name}

${
  diffusion
    ? 'A small masked-diffusion language model in exact LLaDA layout (`LLaDAModelLM` config keys and tensor names), so it runs through the same code path as LLaDA-8B.'
    : "A small autoregressive language model in Hugging Face Llama layout (`LlamaForCausalLM`), the same shape as the diffusion model and trained on the same tokens: difflm's AR baseline."
} It writes simple English stories. It ships inside the difflm package: \`loadModel(${diffusion ? '' : "'builtin:ar'"})\`.

- Parameters: ${log.parameters.toLocaleString('en-US')} (d_model ${c.dModel}, ${c.nLayers} layers, ${c.nHeads} heads, MLP ${c.mlpHiddenSize}, vocabulary ${c.vocabRows}, untied head), stored in BF16.
- Tokenizer: byte-level BPE with ${c.vocabRows} entries (tokenizer.json), trained on the same training text (tools/train/bpe.py).
- Data: TinyStories (roneneldan/TinyStories), license **CDLA-Sharing-1.0**: the first 2 MiB of the training split (${log.data.train_stories.toLocaleString('en-US')} stories, ${log.data.train_tokens.toLocaleString('en-US')} tokens; sha256 ${log.data.train_sha256.slice(0, 16)}…). The validation split was held out. The weights are shared under the same license.
- Objective: ${log.objective}.
- Training: \`${log.command}\` on a 2-core CPU VM with ${log.hyperparameters.threads} thread (PyTorch ${log.environment.torch}), ${(log.wall_seconds / 60).toFixed(1)} minutes, ${log.steps} steps of ${log.hyperparameters.batch_size} × ${log.hyperparameters.seq_len} tokens (${log.tokens_seen.toLocaleString('en-US')} tokens, ${log.epochs.toFixed(1)} epochs), AdamW lr ${log.hyperparameters.lr}, seed ${log.hyperparameters.seed}. Full log: train_log.json.

## Held-out metrics

Measured by difflm's \`model.score()\` (\`node bench/eval-builtin.js\`) on ${h.chunks} chunks (${h.tokens.toLocaleString('en-US')} tokens) of the TinyStories validation split (test/fixtures/tinystories-heldout.json), each chunk scored after BOS:

| metric | value |
|---|---|
| ${diffusion ? 'NLL bound per token (ELBO, nats)' : 'NLL per token (exact, nats)'} | ${h.nllPerToken.toFixed(4)} |
| ${diffusion ? 'perplexity bound' : 'perplexity'} | ${h.perplexity.toFixed(2)} |
${diffusion ? `| Monte-Carlo samples per chunk (batch, seed) | ${h.samples} (${h.batch}, ${h.seed}) |\n` : ''}
${
  diffusion
    ? "The diffusion figure is an upper bound on the negative log-likelihood (LLaDA's Monte-Carlo ELBO), so it is not directly comparable with the AR model's exact figure: the gap between them overstates the true difference."
    : 'The AR figure is exact.'
}

## Five unedited samples

Settings (the model's generation_config.json defaults): ${settings}; seeds 1 to 5, one per sample. The text after each prompt is the model's, unedited.

${ev.samples.map((x, i) => `${i + 1}. **${x.prompt}**${x.text}`).join('\n\n')}
`;
}

const PROMPTS = [
  'Once upon a time',
  'One day, a little girl named Lily',
  'The dog',
  'Tom and his friend',
  'In a small house',
];
const SCORE = { samples: 64, batch: 8, seed: 0 };
const TEST_SCORE = { samples: 16, batch: 8, seed: 0 };

for (const [kind, name] of Object.entries(BUILTIN_MODELS)) {
  const model = await loadModel(`builtin:${kind}`, { threads: 2 });
  const diffusion = model.config.family === 'llada';
  // The samples use the model's own defaults (generation_config.json).
  const settings = model.generationDefaults;
  const heldout = {
    ...(await scoreChunks(model, slice, SCORE)),
    method: diffusion ? 'elbo' : 'exact',
    ...SCORE,
  };
  // A smaller, cheaper slice that the tests recompute.
  const testSlice = {
    ...(await scoreChunks(model, slice.slice(0, 4), TEST_SCORE)),
    method: heldout.method,
    ...TEST_SCORE,
  };
  const samples = [];
  for (const [i, prompt] of PROMPTS.entries()) {
    const r = await model.generate(prompt, { seed: i + 1 });
    samples.push({ prompt, seed: i + 1, text: r.text });
  }
  regression[kind] = { ...REGRESSION[kind], tokens: regressionIds(kind) };
  const out = { model: name, heldout, testSlice, sampleSettings: settings, samples };
  writeFileSync(join(root, 'models', name, 'eval.json'), JSON.stringify(out, null, 2) + '\n');
  writeFileSync(join(root, 'models', name, 'README.md'), modelCard(kind, name, model, out));
  console.log(JSON.stringify(out, null, 2));
  await model.dispose();
}
writeFileSync(
  join(root, 'test/fixtures/builtin-regression.json'),
  JSON.stringify(regression, null, 2) + '\n',
);
