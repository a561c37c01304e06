/**
 * Finds and loads the native addon, lazily (never at import time) and once per process.
 *
 * Order: `DIFFLM_NATIVE_PATH` (an explicit .node file, no fallback), else node-gyp-build from the
 * package root: `build/Release`, `build/Debug`, then `prebuilds/<platform>-<arch>/`.
 * On failure one {@link NativeLoadError} lists every attempt and the fix.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeLoadError } from './errors';
import type { NativeBinding } from './native-types';

const PACKAGE_NAME = 'difflm';
const requireHere = createRequire(import.meta.url);

interface NodeGypBuild {
  (dir: string): unknown;
  resolve(dir: string): string;
}

let cached: NativeBinding | undefined;

/** Walks up from `startDir` to the folder whose package.json is named "difflm". */
export function findPackageRoot(startDir: string): string | undefined {
  let dir = resolve(startDir);
  for (;;) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      try {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown };
        if (pkg.name === PACKAGE_NAME) return dir;
      } catch {
        // an unreadable package.json on the way up is not ours; keep walking
      }
    }
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

function messageOf(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).trim().split('\n')[0] ?? '';
}

function checkBinding(value: unknown, from: string): NativeBinding {
  const b = value as Partial<NativeBinding> | null;
  if (!b || typeof b.loadModel !== 'function' || typeof b.cpuInfo !== 'function') {
    throw new Error(`${from} is not a difflm addon (no loadModel/cpuInfo exports)`);
  }
  return b as NativeBinding;
}

function loadFromEnv(path: string): NativeBinding {
  const abs = resolve(path);
  try {
    return checkBinding(requireHere(abs), abs);
  } catch (err) {
    throw new NativeLoadError([`DIFFLM_NATIVE_PATH=${abs}: ${messageOf(err)}`], err);
  }
}

function loadFromPackage(): NativeBinding {
  const here = dirname(fileURLToPath(import.meta.url));
  const root = findPackageRoot(here);
  if (root === undefined) {
    throw new NativeLoadError([`a package.json named "${PACKAGE_NAME}" above ${here}: none found`]);
  }
  const gypBuild = requireHere('node-gyp-build') as NodeGypBuild;
  let file: string;
  try {
    file = gypBuild.resolve(root);
  } catch (err) {
    const prebuilds = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
    const attempts = [
      `${join(root, 'build', 'Release')}/*.node: not found`,
      `${join(root, 'build', 'Debug')}/*.node: not found`,
      `${prebuilds}/*.node: ${messageOf(err)}`,
    ];
    throw new NativeLoadError(attempts, err);
  }
  try {
    return checkBinding(requireHere(file), file);
  } catch (err) {
    throw new NativeLoadError([`${file}: ${messageOf(err)}`], err);
  }
}

/** Loads the addon on first use and caches it; throws {@link NativeLoadError}. */
export function loadNative(): NativeBinding {
  if (cached) return cached;
  const override = process.env.DIFFLM_NATIVE_PATH;
  cached = override ? loadFromEnv(override) : loadFromPackage();
  return cached;
}

/** @internal Forgets the cached binding (tests only). */
export function resetNativeCacheForTests(): void {
  cached = undefined;
}
