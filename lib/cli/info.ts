/** `difflm info`: package and engine versions, CPU features and the chosen GEMM kernels. */
import type { Command } from 'commander';
import { cpuInfo, nativeVersion, version } from '../index';

export function registerInfo(program: Command): void {
  program
    .command('info')
    .description('show versions, CPU features and the kernels the engine uses')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) => {
      const info = { version, nativeVersion: nativeVersion(), cpu: cpuInfo() };
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
        ].join('\n') + '\n',
      );
    });
}
