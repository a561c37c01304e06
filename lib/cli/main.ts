/**
 * The `difflm` program: wires the commands, Ctrl-C and exit codes.
 * Ctrl-C aborts the running generation (exit 130); a second Ctrl-C exits at once.
 */
import { Command } from 'commander';
import { version } from '../index';
import { reportError } from './fail';
import { registerGenerate } from './generate';
import { registerInfo } from './info';

/** Runs the CLI on `argv` (as in `process.argv`) and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const controller = new AbortController();
  const onSigint = (): void => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  const program = new Command()
    .name('difflm')
    .description('Diffusion language models, natively accelerated')
    .version(version)
    .exitOverride();
  registerGenerate(program, controller.signal);
  registerInfo(program);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    return reportError(err);
  } finally {
    process.off('SIGINT', onSigint);
  }
}
