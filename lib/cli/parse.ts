/** Number parsing for command-line flags; range checks are left to the library's validation. */
import { InvalidArgumentError } from 'commander';

/** Parses a flag value as a number (integer checks happen in difflm's option validation). */
export function parseNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || Number.isNaN(n)) throw new InvalidArgumentError('Not a number.');
  return n;
}

/** The command-line flag of each option, to point error messages at what the user typed. */
export const FLAG_OF_OPTION: Readonly<Record<string, string>> = {
  genLength: '--gen-length',
  steps: '--steps',
  blockLength: '--block-length',
  temperature: '--temperature',
  remasking: '--remasking',
  cfgScale: '--cfg-scale',
  seed: '--seed',
  threads: '--threads',
  device: '--device',
  dir: '--model',
  cache: '--cache',
  parallel: '--threshold/--factor',
  'parallel.threshold': '--threshold',
  'parallel.factor': '--factor',
  topK: '--top-k',
  topP: '--top-p',
  alg: '--alg',
  algTemp: '--alg-temp',
  eps: '--eps',
  threshold: '--threshold',
};
