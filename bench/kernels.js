// GEMM throughput at LLaDA-like shapes, per weight dtype and SIMD path, against this CPU's
// peak FMA and BF16-dot throughput measured in the same run (tinybench); and the GEMV of
// left-to-right decoding (one activation row, weights larger than the caches), which is bound by
// reading the weights, against the memory read bandwidth measured in the same run; and the
// confidence of one 126464-token row against a float64 exp per token.
// Usage: node bench/kernels.js [--threads N] [--time MS] [--json FILE]
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Bench } from 'tinybench';
import { loadNativeForBench } from './native.js';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    time: { type: 'string', default: '1500' },
    json: { type: 'string' },
  },
});
const threads = Number(values.threads);
const native = loadNativeForBench();
const peakFma = native.bench.peakGflops('fma', threads, 500);
const peakBf16 = native.bench.peakGflops('bf16dot', threads, 500);
const readGbps = native.bench.readGbps(threads, 1024, 1000);
const paths = native.bench.gemmPaths();
const best = paths[paths.length - 1];

// LLaDA-8B projections (d 4096, FFN 12288) at m = 64 and 256 activation rows, and the ~110M
// benchmark model's (d 768, FFN 2048) at a full canvas of 160 rows.
const shapes = [
  { m: 64, n: 4096, k: 4096 },
  { m: 256, n: 4096, k: 4096 },
  { m: 256, n: 12288, k: 4096 },
  { m: 256, n: 4096, k: 12288 },
  { m: 160, n: 2048, k: 768 },
  { m: 160, n: 768, k: 2048 },
];
const configs = [];
for (const dtype of ['f32', 'f16', 'bf16']) {
  for (const s of shapes) configs.push({ ...s, dtype, path: best });
}
// The AVX2 baseline (what a CPU without AVX-512 runs) on two shapes, for comparison.
if (paths.includes('avx2') && best !== 'avx2') {
  for (const dtype of ['f32', 'bf16'])
    configs.push({ m: 256, n: 4096, k: 4096, dtype, path: 'avx2' });
}

// GEMV: LLaDA-8B's FFN up projection and LM head (96 and 1000 MiB of BF16, past any cache).
for (const dtype of ['bf16', 'f16']) {
  configs.push({ m: 1, n: 12288, k: 4096, dtype, path: best });
  configs.push({ m: 1, n: 126464, k: 4096, dtype, path: best });
}
if (paths.includes('avx2') && best !== 'avx2') {
  configs.push({ m: 1, n: 12288, k: 4096, dtype: 'bf16', path: 'avx2' });
}

const bench = new Bench({ time: Number(values.time), warmupTime: 200, iterations: 3 });
const cases = new Map();
for (const c of configs) {
  const g = native.bench.gemm({ ...c, threads });
  const name = `gemm ${c.dtype} ${c.path} m${c.m} n${c.n} k${c.k}`;
  cases.set(name, { ...c, flops: g.flops, weightBytes: g.weightBytes });
  bench.add(name, () => g.run());
}
// The confidence of one LLaDA-vocabulary row (one thread; rows run in parallel in the engine):
// the engine's segmented float32-term definition against a float64 exp per token.
const confidence = new Map();
for (const method of ['segmented', 'float64']) {
  const c = native.bench.confidence({ vocab: 126464, method });
  const name = `confidence ${method} v126464`;
  confidence.set(name, c.bytes);
  bench.add(name, () => c.run());
}
await bench.run();

const rows = [];
for (const task of bench.tasks) {
  if (confidence.has(task.name)) {
    const ms = task.result.latency.mean;
    rows.push({
      kernel: task.name,
      ms: Number(ms.toFixed(4)),
      gbps: Number((confidence.get(task.name) / (ms / 1e3) / 1e9).toFixed(1)),
      peak: 'row in cache',
    });
    continue;
  }
  const c = cases.get(task.name);
  const ms = task.result.latency.mean;
  const gflops = c.flops / (ms / 1e3) / 1e9;
  if (c.m === 1) {
    const gbps = c.weightBytes / (ms / 1e3) / 1e9;
    rows.push({
      kernel: task.name,
      ms: Number(ms.toFixed(3)),
      gbps: Number(gbps.toFixed(1)),
      peak: 'read GB/s',
      pctOfPeak: Number(((100 * gbps) / readGbps).toFixed(1)),
    });
    continue;
  }
  const peak = c.dtype === 'bf16' && c.path === 'avx512bf16' ? peakBf16 : peakFma;
  rows.push({
    kernel: task.name,
    ms: Number(ms.toFixed(3)),
    gflops: Number(gflops.toFixed(1)),
    peak: c.dtype === 'bf16' && c.path === 'avx512bf16' ? 'bf16dot' : 'fma32',
    pctOfPeak: Number(((100 * gflops) / peak).toFixed(1)),
  });
}
console.log(`threads ${threads}; GEMM paths ${paths.join(', ')}`);
console.log(
  `peak FMA float32 ${peakFma.toFixed(1)} GFLOP/s, peak BF16 dot ${peakBf16.toFixed(1)} GFLOP/s`,
);
console.log(`memory read ${readGbps.toFixed(1)} GB/s`);
console.table(rows);
if (values.json) {
  const out = { threads, peakFma, peakBf16, readGbps, paths, rows };
  writeFileSync(values.json, JSON.stringify(out, null, 2));
}
