import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { END_GLYPH, MASK_GLYPH, renderCanvas, sanitizeTokenText } from '../../lib/cli/denoise-view';
import { reportError } from '../../lib/cli/fail';
import { main } from '../../lib/cli/main';
import { InvalidOptionsError, ModelLoadError } from '../../lib/errors';
import { createFakeNative } from './helpers/fake-native';
import { SPECIAL, writeTinyModel, type TinyModelFolder } from './helpers/tiny-model';

let fake: ReturnType<typeof createFakeNative>;
vi.mock('../../lib/native', () => ({ loadNative: () => fake.binding }));

const special = { mask: SPECIAL.mask, eos: SPECIAL.eos, eot: SPECIAL.eot };
const text = (id: number): string => String.fromCharCode(id);

describe('renderCanvas', () => {
  it('shows masks, tokens and end tokens, wrapped at the width', () => {
    const m = SPECIAL.mask;
    const lines = renderCanvas([72, 105, m, m, SPECIAL.eos, 33], {
      special,
      tokenText: text,
      width: 4,
      color: false,
    });
    expect(lines).toEqual([`Hi${MASK_GLYPH}${MASK_GLYPH}`, `${END_GLYPH}!`]);
  });

  it('splits long tokens across lines', () => {
    const lines = renderCanvas([1, 2], {
      special,
      tokenText: (id) => (id === 1 ? 'abc' : 'defgh'),
      width: 3,
      color: false,
    });
    expect(lines).toEqual(['abc', 'def', 'gh']);
  });

  it('dims masks and highlights fresh tokens in color', () => {
    const [line] = renderCanvas([SPECIAL.mask, 65], {
      special,
      tokenText: text,
      width: 80,
      fresh: new Set([1]),
      color: true,
    });
    expect(line).toBe(`\x1b[2m${MASK_GLYPH}\x1b[22m\x1b[1;36mA\x1b[0m`);
  });

  it('makes tokens printable on one line', () => {
    expect(sanitizeTokenText('a\nb\r\nc\td\x07')).toBe('a↵b↵c→d');
  });
});

describe('reportError', () => {
  const sink = () => {
    let out = '';
    return {
      stream: { write: (s: string) => ((out += s), true) } as NodeJS.WritableStream,
      text: () => out,
    };
  };

  it('prints difflm errors on one line, naming the flag', () => {
    const s = sink();
    const err = new InvalidOptionsError(
      'genLength',
      'Expected a positive integer for option "genLength" but received 0',
    );
    expect(reportError(err, s.stream)).toBe(1);
    expect(s.text()).toBe(
      'difflm: Expected a positive integer for option "genLength" but received 0 (flag --gen-length)\n',
    );
    const s2 = sink();
    expect(reportError(new ModelLoadError('bad config'), s2.stream)).toBe(1);
    expect(s2.text()).toBe('difflm: bad config\n');
  });

  it('exits 130 on abort and prints the stack of unexpected errors', () => {
    const s = sink();
    expect(reportError(new DOMException('x', 'AbortError'), s.stream)).toBe(130);
    expect(s.text()).toBe('difflm: aborted\n');
    const s2 = sink();
    expect(reportError(new TypeError('oops'), s2.stream)).toBe(1);
    expect(s2.text()).toMatch(/^difflm: unexpected error\nTypeError: oops\n {4}at /);
  });
});

describe('difflm (in process, fake engine)', () => {
  let folder: TinyModelFolder;
  let out: string;
  let err: string;

  beforeEach(() => {
    fake = createFakeNative();
    folder = writeTinyModel();
    out = '';
    err = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  });

  afterEach(() => {
    vi.restoreAllMocks();
    folder.remove();
  });

  const run = (...args: string[]) => main(['node', 'difflm', ...args]);

  it('generate prints the text on stdout and a summary on stderr', async () => {
    const code = await run('generate', '-m', folder.dir, '--gen-length', '8', '--seed', '1', 'ab');
    expect(code).toBe(0);
    expect(out).toBe('DEFGHIJK\n');
    expect(err).toMatch(/^8 tokens, 8 steps, /);
    expect(fake.controls.generateCalls[0]?.seed).toBe(1);
  });

  it('generate --chat uses the chat template, passes the options', async () => {
    const code = await run(
      'generate',
      '-m',
      folder.dir,
      '--chat',
      '-q',
      '-n',
      '16',
      '--block-length',
      '8',
      '--steps',
      '8',
      '--temperature',
      '0.5',
      '--remasking',
      'random',
      '--threads',
      '1',
      'Hi',
    );
    expect(code).toBe(0);
    expect(err).toBe('');
    const req = fake.controls.generateCalls[0];
    expect(req?.prompt[0]).toBe(SPECIAL.bos);
    expect(req).toMatchObject({
      genLength: 16,
      blockLength: 8,
      steps: 8,
      temperature: 0.5,
      remasking: 1,
    });
    expect(fake.controls.spec?.threads).toBe(1);
  });

  it('generate passes --cache and --threshold / --factor, and refuses both rules', async () => {
    expect(
      await run('-m', folder.dir, '-q', '-n', '8', '--cache', 'dual', '--threshold', '0.8', 'x'),
    ).toBe(0);
    expect(fake.controls.generateCalls[0]).toMatchObject({ cache: 2, parallel: 1, threshold: 0.8 });
    expect(await run('-m', folder.dir, '-q', '-n', '8', '--factor', '2', 'x')).toBe(0);
    expect(fake.controls.generateCalls[1]).toMatchObject({ cache: 0, parallel: 2, factor: 2 });
    expect(await run('-m', folder.dir, '-n', '8', '--threshold', '1.5', 'x')).toBe(1);
    expect(err).toContain('"parallel.threshold" but received 1.5 (flag --threshold)');
    err = '';
    expect(await run('-m', folder.dir, '--threshold', '0.9', '--factor', '1', 'x')).toBe(1);
    expect(err).toBe(
      'difflm: Give --threshold or --factor, not both (flag --threshold/--factor)\n',
    );
  });

  it('generate exits 1 with the message on bad options', async () => {
    const code = await run(
      'generate',
      '-m',
      folder.dir,
      '--gen-length',
      '10',
      '--block-length',
      '3',
      'x',
    );
    expect(code).toBe(1);
    expect(err).toBe(
      'difflm: Expected a divisor of genLength (10) for option "blockLength" but received 3 (flag --block-length)\n',
    );
    expect(out).toBe('');
  });

  it('generate exits 1 naming a missing folder', async () => {
    expect(await run('generate', '-m', '/nonexistent/model', 'x')).toBe(1);
    expect(err).toBe('difflm: Model folder /nonexistent/model does not exist or is not a folder\n');
  });

  it('info prints versions and CPU features', async () => {
    expect(await run('info', '--json')).toBe(0);
    expect(JSON.parse(out)).toMatchObject({
      nativeVersion: 'fake-0',
      cpu: { gemmPath: 'portable' },
    });
    out = '';
    expect(await run('info')).toBe(0);
    expect(out).toContain('cpu features: avx2 fma f16c');
  });
});
