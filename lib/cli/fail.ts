/** How the CLI reports errors: difflm's own as one line, aborts as exit 130, bugs with a stack. */
import { CommanderError } from 'commander';
import { DiffLMError, InvalidOptionsError } from '../errors';
import { FLAG_OF_OPTION } from './parse';

function isAbort(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError');
}

/** Writes `err` to stderr and returns the exit code. */
export function reportError(err: unknown, stderr: NodeJS.WritableStream = process.stderr): number {
  if (err instanceof CommanderError) return err.exitCode; // commander printed its message
  if (isAbort(err)) {
    stderr.write('difflm: aborted\n');
    return 130;
  }
  if (err instanceof DiffLMError) {
    const flag = err instanceof InvalidOptionsError ? FLAG_OF_OPTION[err.option] : undefined;
    stderr.write(`difflm: ${err.message}${flag ? ` (flag ${flag})` : ''}\n`);
    return 1;
  }
  stderr.write(`difflm: unexpected error\n${err instanceof Error ? err.stack : String(err)}\n`);
  return 1;
}
