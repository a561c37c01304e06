/**
 * The built package's CommonJS and ESM entry points (dist/, built by README's test command
 * before the suites run) load the addon and generate, in fresh Node processes.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FIXTURE_A } from './native-fixture';

const root = fileURLToPath(new URL('../../', import.meta.url));
const script = (load: string): string => `
  ${load}
  const m = await loadModel(${JSON.stringify(FIXTURE_A)}, { threads: 1 });
  const r = await m.generate({ inputIds: [314, 1, 2] }, { genLength: 8 });
  console.log(JSON.stringify({ n: r.tokens.length, cuda: Array.isArray(devices().cuda) }));
  await m.dispose();`;

function run(args: string[]): { n: number; cuda: boolean } {
  const r = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', timeout: 60_000 });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout) as { n: number; cuda: boolean };
}

describe('package entry points', () => {
  it('require("difflm") works from CommonJS (dist/index.cjs)', () => {
    const cjs = join(root, 'dist/index.cjs');
    const body = script(`const { loadModel, devices } = require(${JSON.stringify(cjs)});`);
    expect(run(['-e', `(async () => { ${body} })()`])).toEqual({ n: 8, cuda: true });
  });

  it('import "difflm" works from ESM (dist/index.js)', () => {
    const esm = join(root, 'dist/index.js');
    const body = script(`const { loadModel, devices } = await import(${JSON.stringify(esm)});`);
    expect(run(['--input-type=module', '-e', body])).toEqual({ n: 8, cuda: true });
  });
});
