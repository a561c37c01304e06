// GEMM throughput at LLaDA-like shapes, per weight dtype and SIMD path, against this CPU's
// peak FMA and BF16-dot throughput measured in the same run (tinybench).
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

const bench = new Bench({ time: Number(values.time), warmupTime: 200, iterations: 3 });
const cases = new Map();
for (const c of configs) {
  const g = native.bench.gemm({ ...c, threads });
  const name = `gemm ${c.dtype} ${c.path} m${c.m} n${c.n} k${c.k}`;
  cases.set(name, { ...c, flops: g.flops });
  bench.add(name, () => g.run());
}
await bench.run();

const rows = [];
for (const task of bench.tasks) {
  const c = cases.get(task.name);
  const ms = task.result.latency.mean;
  const gflops = c.flops / (ms / 1e3) / 1e9;
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
console.table(rows);
if (values.json) {
  writeFileSync(values.json, JSON.stringify({ threads, peakFma, peakBf16, paths, rows }, null, 2));
}
