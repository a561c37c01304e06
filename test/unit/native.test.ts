import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { NativeLoadError } from '../../lib/errors';
import {
  findPackageRoot,
  loadNative,
  nativeCandidates,
  resetNativeCacheForTests,
} from '../../lib/native';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/$/, '');
const saved = process.env.DIFFLM_NATIVE_PATH;

afterEach(() => {
  if (saved === undefined) delete process.env.DIFFLM_NATIVE_PATH;
  else process.env.DIFFLM_NATIVE_PATH = saved;
  resetNativeCacheForTests();
});

describe('findPackageRoot', () => {
  it('walks up to the package named difflm', () => {
    expect(findPackageRoot(join(repoRoot, 'lib', 'cli'))).toBe(repoRoot);
    expect(findPackageRoot(join(repoRoot, 'dist'))).toBe(repoRoot);
  });

  it('skips other packages and returns undefined at the top', () => {
    const dir = mkdtempSync(join(tmpdir(), 'difflm-root-'));
    try {
      mkdirSync(join(dir, 'inner'));
      writeFileSync(join(dir, 'inner', 'package.json'), '{"name": "other"}');
      writeFileSync(join(dir, 'package.json'), '{"name": "difflm"}');
      expect(findPackageRoot(join(dir, 'inner'))).toBe(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(findPackageRoot('/')).toBeUndefined();
  });
});

describe('nativeCandidates', () => {
  it('lists local builds first, then the prebuilds node-gyp-build would accept, best first', () => {
    const dir = mkdtempSync(join(tmpdir(), 'difflm-candidates-'));
    try {
      const pre = join(dir, 'prebuilds', `${process.platform}-${process.arch}`);
      mkdirSync(pre, { recursive: true });
      mkdirSync(join(dir, 'build', 'Release'), { recursive: true });
      writeFileSync(join(dir, 'build', 'Release', 'difflm.node'), '');
      for (const f of [
        'difflm.node',
        'difflm.glibc.node',
        'difflm.musl.node',
        'difflm.abi1.node',
      ]) {
        writeFileSync(join(pre, f), '');
      }
      writeFileSync(join(pre, 'README.txt'), '');
      const libc = process.env.LIBC ?? 'glibc';
      expect(nativeCandidates(dir)).toEqual([
        join(dir, 'build', 'Release', 'difflm.node'),
        join(pre, `difflm.${libc}.node`),
        join(pre, 'difflm.node'),
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(nativeCandidates('/nonexistent')).toEqual([]);
  });
});

describe('loadNative', () => {
  it('is not called at import time (importing lib/index does not throw)', async () => {
    process.env.DIFFLM_NATIVE_PATH = '/nonexistent/difflm.node';
    await expect(import('../../lib/index')).resolves.toHaveProperty('loadModel');
  });

  it('reports DIFFLM_NATIVE_PATH failures without falling back', () => {
    process.env.DIFFLM_NATIVE_PATH = '/nonexistent/difflm.node';
    let err: unknown;
    try {
      loadNative();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NativeLoadError);
    const e = err as NativeLoadError;
    expect(e.attempts).toHaveLength(1);
    expect(e.attempts[0]).toMatch(
      /^DIFFLM_NATIVE_PATH=\/nonexistent\/difflm\.node: Cannot find module/,
    );
    expect(e.message).toContain('npm rebuild difflm');
  });

  it('rejects a module that is not the addon', () => {
    const dir = mkdtempSync(join(tmpdir(), 'difflm-fake-'));
    try {
      const file = join(dir, 'fake.cjs');
      writeFileSync(file, 'module.exports = { hello: 1 };');
      process.env.DIFFLM_NATIVE_PATH = file;
      expect(() => loadNative()).toThrow(/is not a difflm addon \(no loadModel\/cpuInfo exports\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('loads and caches a module given by DIFFLM_NATIVE_PATH', () => {
    const dir = mkdtempSync(join(tmpdir(), 'difflm-fake-'));
    try {
      const file = join(dir, 'fake.cjs');
      writeFileSync(
        file,
        'module.exports = { version: () => "x", cpuInfo: () => ({ cores: 1 }), loadModel: async () => ({}) };',
      );
      process.env.DIFFLM_NATIVE_PATH = file;
      const binding = loadNative();
      expect(binding.version()).toBe('x');
      process.env.DIFFLM_NATIVE_PATH = '/elsewhere.node';
      expect(loadNative()).toBe(binding);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
