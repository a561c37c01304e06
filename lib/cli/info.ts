/** `difflm info`: versions, CPU features, the chosen GEMM kernels and the CUDA devices. */
import type { Command } from 'commander';
import { devices, nativeVersion, version } from '../index';

export function registerInfo(program: Command): void {
  program
    .command('info')
    .description('show versions, CPU features, the kernels the engine uses and CUDA devices')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) => {
      const d = devices();
      const info = {
        version,
        nativeVersion: nativeVersion(),
        cpu: d.cpu,
        cuda: d.cuda,
        cudaReason: d.cudaReason,
      };
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
        return;
      }
      const features = (['avx2', 'fma', 'f16c', 'avx512f', 'avx512bf16'] as const)
        .filter((f) => info.cpu[f])
        .join(' ');
      process.stdout.write(
        [
          `difflm ${info.version} (engine ${info.nativeVersion})`,
          `cores: ${info.cpu.cores}`,
          `cpu features: ${features || 'none of avx2/fma/f16c/avx512'}`,
          `gemm kernels: ${info.cpu.gemmPath}`,
          ...(info.cuda.length === 0
            ? [`cuda: none (${info.cudaReason})`]
            : info.cuda.map(
                (g) =>
                  `cuda:${g.index}: ${g.name}, compute capability ${g.computeCapability}, ` +
                  `${(g.totalBytes / 2 ** 30).toFixed(1)} GiB (${(g.freeBytes / 2 ** 30).toFixed(1)} GiB free)`,
              )),
        ].join('\n') + '\n',
      );
    });
}
