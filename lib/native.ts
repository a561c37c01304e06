/**
 * Finds and loads the native addon, lazily (never at import time) and once per process.
 *
 * Order: `DIFFLM_NATIVE_PATH` (an explicit .node file, no fallback), else from the package root:
 * `build/Release`, `build/Debug`, then `prebuilds/<platform>-<arch>/` chosen by node-gyp-build's
 * tag rules; a file that does not load is skipped for the next (with a warning). On failure one
 * {@link NativeLoadError} lists every attempt and the fix.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
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

interface NodeGypBuildInternals extends NodeGypBuild {
  parseTags(file: string): unknown;
  matchTags(runtime: string, abi: string): (tags: unknown) => boolean;
  compareTags(runtime: string): (a: unknown, b: unknown) => number;
}

/** The first `.node` file of a folder, if any. */
function firstNode(dir: string): string | undefined {
  if (!existsSync(dir)) return undefined;
  const file = readdirSync(dir).find((f) => f.endsWith('.node'));
  return file === undefined ? undefined : join(dir, file);
}

/**
 * Files to try, best first: a local build (build/Release, build/Debug), then every prebuild of
 * this platform and architecture that node-gyp-build's tag rules accept (N-API, libc), most
 * specific first.
 */
export function nativeCandidates(root: string): string[] {
  const list: string[] = [];
  for (const dir of ['Release', 'Debug']) {
    const file = firstNode(join(root, 'build', dir));
    if (file !== undefined) list.push(file);
  }
  const gyp = requireHere('node-gyp-build') as NodeGypBuildInternals;
  const dir = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  if (existsSync(dir)) {
    const tags = readdirSync(dir)
      .map((f) => gyp.parseTags(f))
      .filter(gyp.matchTags('node', process.versions.modules))
      .sort(gyp.compareTags('node')) as { file: string }[];
    for (const t of tags) list.push(join(dir, t.file));
  }
  return list;
}

function loadFromPackage(): NativeBinding {
  const here = dirname(fileURLToPath(import.meta.url));
  const root = findPackageRoot(here);
  if (root === undefined) {
    throw new NativeLoadError([`a package.json named "${PACKAGE_NAME}" above ${here}: none found`]);
  }
  const files = nativeCandidates(root);
  if (files.length === 0) {
    const prebuilds = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
    throw new NativeLoadError([
      `${join(root, 'build', 'Release')}/*.node: not found`,
      `${join(root, 'build', 'Debug')}/*.node: not found`,
      `${prebuilds}/*.node: none for platform=${process.platform} arch=${process.arch} ` +
        `napi libc=${libc()}`,
    ]);
  }
  // A file that fails to load (corrupt, another platform's, missing libraries) is skipped for
  // the next one, and said so once on stderr.
  const attempts: string[] = [];
  let lastError: unknown;
  for (const file of files) {
    try {
      const binding = checkBinding(requireHere(file), file);
      if (attempts.length > 0) {
        process.emitWarning(`difflm: ${attempts.join('; ')}; using ${file}`, 'DiffLMNativeLoad');
      }
      return binding;
    } catch (err) {
      attempts.push(`${file} did not load (${messageOf(err)})`);
      lastError = err;
    }
  }
  throw new NativeLoadError(attempts, lastError);
}

function libc(): string {
  return existsSync('/etc/alpine-release') ? 'musl' : 'glibc';
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
