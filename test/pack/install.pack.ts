/**
 * End to end packaging: `npm pack` the repository (after `npm run prebuild`), check what the
 * tarball holds, install it into an empty project with no compiler on PATH, generate with the
 * built-in model; then break the prebuilt binary and check the fallbacks and their messages.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = resolve(__dirname, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'difflm-pack-'));
const app = join(work, 'app');
const bin = join(work, 'bin');
const prebuild = join('prebuilds', `${process.platform}-${process.arch}`, 'difflm.glibc.node');
const COMPILERS = ['cc', 'c++', 'gcc', 'g++', 'clang', 'clang++', 'cmake', 'make', 'nvcc'];
// What npm, its lifecycle shell and our scripts need; compilers and build tools left out.
const TOOLS = ['node', 'npm', 'npx', 'sh', 'bash', 'env', 'cat', 'ls', 'mkdir', 'rm', 'cp', 'mv'];
let tarball = '';

function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const file = join(dir, cmd);
    if (dir && existsSync(file)) return file;
  }
  return undefined;
}

function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; hideCompilers?: boolean; env?: Record<string, string> } = {},
): SpawnSyncReturns<string> {
  const env = { ...process.env, ...opts.env };
  if (opts.hideCompilers) env.PATH = bin;
  // npm's own variables from an outer `npm test` would point the inner npm at this repository.
  for (const key of Object.keys(env)) if (key.startsWith('npm_')) delete env[key];
  return spawnSync(cmd, args, { cwd: opts.cwd ?? app, env, encoding: 'utf8' });
}

function output(r: SpawnSyncReturns<string>): string {
  return `${r.stdout ?? ''}${r.stderr ?? ''}`;
}

const GENERATE = `
import { loadModel } from 'difflm';
const model = await loadModel('builtin:diffusion', { threads: 2 });
const r = await model.generate('Once upon a time', { genLength: 32, blockLength: 32, steps: 32 });
console.log(JSON.stringify({ text: r.text, tokens: r.tokens.length }));
await model.dispose();
`;

beforeAll(() => {
  expect(existsSync(join(root, prebuild)), `${prebuild}: run npm run prebuild first`).toBe(true);
  mkdirSync(bin);
  for (const tool of TOOLS) {
    const file = which(tool);
    if (file) symlinkSync(file, join(bin, tool));
  }
  const packed = run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], {
    cwd: root,
  });
  expect(packed.status, output(packed)).toBe(0);
  tarball = join(work, (JSON.parse(packed.stdout) as { filename: string }[])[0]!.filename);
  mkdirSync(app);
  // Recent npm (11.19 here) runs a dependency's install script only when the project allows it.
  const pkg = {
    name: 'app',
    private: true,
    type: 'module',
    allowScripts: { [`file:${tarball}`]: true },
  };
  writeFileSync(join(app, 'package.json'), JSON.stringify(pkg));
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('npm pack', () => {
  it('holds the compiled library, prebuilds, models and build sources, and nothing else', () => {
    const r = run('tar', ['tzf', tarball], { cwd: work });
    expect(r.status).toBe(0);
    const files = r.stdout
      .trim()
      .split('\n')
      .map((f) => f.replace(/^package\//, ''));
    expect(files).toContain('dist/index.js');
    expect(files).toContain('dist/index.cjs');
    expect(files).toContain('dist/index.d.ts');
    expect(files).toContain('dist/cli.js');
    expect(files).toContain(prebuild);
    expect(files).toContain('models/tinystories-llada-7m/model.safetensors');
    expect(files).toContain('models/tinystories-llama-7m/model.safetensors');
    expect(files).toContain('CMakeLists.txt');
    expect(files).toContain('binding.gyp');
    expect(files).toContain('scripts/install.cjs');
    expect(files).toContain('native/engine/engine.cpp');
    expect(files).toContain('cuda/gemm.cu');
    const allowed =
      /^(package\.json|README\.md|LICENSE|CMakeLists\.txt|binding\.gyp|scripts\/install\.cjs|dist\/[^/]+\.(js|cjs|d\.ts|d\.cts)|prebuilds\/[^/]+\/[^/]+\.node|models\/[^/]+\/[^/]+|native\/.+\.(h|cpp)|cuda\/[^/]+\.(h|cuh|cu|cpp))$/;
    expect(files.filter((f) => !allowed.test(f))).toEqual([]);
  });
});

describe('installing the tarball with no compiler on PATH', () => {
  it('hides every compiler and build tool', () => {
    for (const c of COMPILERS) {
      const r = run('sh', ['-c', `command -v ${c}`], { cwd: work, hideCompilers: true });
      expect(r.status, `${c} is still on PATH: ${r.stdout}`).not.toBe(0);
    }
  });

  it('installs with the prebuilt binary and says so', () => {
    const r = run('npm', ['install', tarball, '--no-audit', '--no-fund', '--foreground-scripts'], {
      hideCompilers: true,
    });
    expect(r.status, output(r)).toBe(0);
    expect(output(r)).toContain(`difflm: using the prebuilt native binary ${prebuild}`);
    expect(existsSync(join(app, 'node_modules', 'difflm', 'build'))).toBe(false);
  });

  it('generates with the built-in model', () => {
    const r = run('node', ['--input-type=module', '-e', GENERATE], { hideCompilers: true });
    expect(r.status, output(r)).toBe(0);
    const got = JSON.parse(r.stdout.trim().split('\n').pop()!) as { text: string; tokens: number };
    expect(got.tokens).toBe(32);
    expect(got.text.length).toBeGreaterThan(10);
  });
});

describe('a corrupt or mismatched prebuilt binary', () => {
  const installed = join(app, 'node_modules', 'difflm');

  it('is detected at load: import works, loadModel rejects with NativeLoadError', () => {
    writeFileSync(join(installed, prebuild), 'this is not an ELF file');
    const code = `
      const difflm = await import('difflm');
      try { await difflm.loadModel('builtin:diffusion'); console.log('loaded'); }
      catch (e) { console.log(e.name, e.code, e.message); }`;
    const r = run('node', ['--input-type=module', '-e', code], { hideCompilers: true });
    expect(r.status, output(r)).toBe(0);
    expect(r.stdout).toContain('NativeLoadError DIFFLM_NATIVE_LOAD');
    expect(r.stdout).toContain(`${prebuild} did not load (`);
  });

  it('makes the install fall back, and with no compiler fail with one clear message', () => {
    const r = run('npm', ['rebuild', 'difflm', '--foreground-scripts'], { hideCompilers: true });
    expect(r.status).not.toBe(0);
    const text = output(r);
    expect(text).toContain('difflm: no prebuilt binary loads (');
    expect(text).toContain('could not install the native addon');
    expect(text).toContain('apt-get install cmake make g++');
  });

  it('for another platform only is reported with what was looked for', () => {
    const dir = join(installed, 'prebuilds');
    renameSync(join(dir, `${process.platform}-${process.arch}`), join(dir, 'win32-arm64'));
    const code = `
      const difflm = await import('difflm');
      try { await difflm.loadModel('builtin:diffusion'); console.log('loaded'); }
      catch (e) { console.log(e.name, e.message); }`;
    const r = run('node', ['--input-type=module', '-e', code], { hideCompilers: true });
    expect(r.stdout).toContain('NativeLoadError');
    expect(r.stdout).toContain(`none for platform=${process.platform} arch=${process.arch}`);
    expect(readdirSync(dir)).toEqual(['win32-arm64']);
  });

  it('is replaced by a cmake-js build from source when a compiler is there', () => {
    const r = run('npm', ['rebuild', 'difflm', '--foreground-scripts'], {
      env: { DIFFLM_CUDA: 'OFF' },
    });
    expect(r.status, output(r)).toBe(0);
    expect(output(r)).toContain('; building from source with cmake-js');
    const g = run('node', ['--input-type=module', '-e', GENERATE]);
    expect(g.status, output(g)).toBe(0);
    expect((JSON.parse(g.stdout.trim().split('\n').pop()!) as { tokens: number }).tokens).toBe(32);
  });
});
