// Two builds of the addon in one process, GEMM against GEMM on the same shapes, alternating
// runs (best of 12 per build): the ratio of a kernel change, free of this VM's drift between
// runs. Build the old one first and copy build/Release/difflm.node aside.
// Usage: node bench/gemm-ab.js OLD.node NEW.node [--threads 1] [--dtype bf16,f32] [--path PATH]
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    threads: { type: 'string', default: '1' },
    dtype: { type: 'string', default: 'bf16,f32' },
    path: { type: 'string' },
  },
});
if (positionals.length !== 2) throw new Error('usage: node bench/gemm-ab.js OLD.node NEW.node');
const require = createRequire(import.meta.url);
const builds = positionals.map((p) => require(resolve(p)));
const threads = Number(values.threads);
const paths = builds[1].bench.gemmPaths();
const shapes = [
  [160, 2048, 768],
  [160, 768, 768],
  [160, 768, 2048],
  [256, 4096, 4096],
  [64, 4096, 4096],
  [256, 4096, 12288],
  [256, 12288, 4096],
];
console.log(`threads ${threads}; best of 12 alternating runs of 3 calls each`);
for (const dtype of values.dtype.split(',')) {
  const path = values.path ?? paths[paths.length - 1];
  for (const [m, n, k] of shapes) {
    const g = builds.map((b) => b.bench.gemm({ m, n, k, dtype, path, threads }));
    const best = [Infinity, Infinity];
    for (let r = 0; r < 12; r++)
      for (let v = 0; v < 2; v++) {
        const t0 = performance.now();
        for (let i = 0; i < 3; i++) g[v].run();
        best[v] = Math.min(best[v], (performance.now() - t0) / 3);
      }
    const gf = best.map((ms) => g[0].flops / ms / 1e6);
    console.log(
      `${dtype} ${path} ${m}x${n}x${k}: old ${gf[0].toFixed(1)}, new ${gf[1].toFixed(1)} GFLOP/s, ` +
        `new/old ${(gf[1] / gf[0]).toFixed(3)}`,
    );
  }
}
