#!/usr/bin/env node
// npm install hook: use a prebuilt binary that loads, else build from source with cmake-js,
// else with node-gyp (binding.gyp, CPU only). Says in one line which it took and why.
// DIFFLM_BUILD_FROM_SOURCE=1 (or npm's --build-from-source) skips the prebuilt binary;
// DIFFLM_CUDA=AUTO|ON|OFF is passed to a cmake-js build.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');
const fromSource =
  process.env.npm_config_build_from_source === 'true' ||
  process.env.DIFFLM_BUILD_FROM_SOURCE === '1';

// Test-loads the binary node-gyp-build picks in a child process, so a broken file cannot take
// this process down. Returns { file } or { reason }.
function probe() {
  const code =
    `const f = require('node-gyp-build').path(${JSON.stringify(root)});` +
    `require(f); process.stdout.write(f);`;
  const r = spawnSync(process.execPath, ['-e', code], { cwd: root, encoding: 'utf8' });
  if (r.status === 0) return { file: path.relative(root, r.stdout.trim()) };
  const lines = `${r.stderr || ''}`.split('\n').map((l) => l.trim());
  const reason = lines.find((l) => /Error|error:|No native build/.test(l)) || `exit ${r.status}`;
  return { reason: reason.replace(/^\S*Error: /, '') };
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  return r.status === 0;
}

function resolveBin(mod, bin) {
  try {
    return require.resolve(`${mod}/${bin}`, { paths: [root] });
  } catch {
    return null;
  }
}

function has(cmd) {
  return spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
}

let why = 'building from source was asked for';
if (!fromSource) {
  const p = probe();
  if (p.file) {
    console.log(`difflm: using the prebuilt native binary ${p.file}`);
    process.exit(0);
  }
  why = `no prebuilt binary loads (${p.reason})`;
}
const cmakeJs = resolveBin('cmake-js', 'bin/cmake-js');
if (cmakeJs && has('cmake')) {
  console.log(`difflm: ${why}; building from source with cmake-js`);
  const args = [cmakeJs, 'compile', '--log-level', 'warn'];
  if (process.env.DIFFLM_CUDA) args.push(`--CDDIFFLM_CUDA=${process.env.DIFFLM_CUDA}`);
  if (run(process.execPath, args)) process.exit(0);
  why = 'the cmake-js build failed';
} else {
  why = `${why}, and cmake is not installed`;
}
const nodeGyp = resolveBin('node-gyp', 'bin/node-gyp.js') || process.env.npm_config_node_gyp;
if (nodeGyp) {
  console.log(`difflm: ${why}; building from source with node-gyp (CPU only)`);
  if (run(process.execPath, [nodeGyp, 'rebuild'])) process.exit(0);
  why = 'the node-gyp build failed';
}
console.error(
  `difflm: could not install the native addon: ${why}. Install CMake (>= 3.18), make and a ` +
    'C++17 compiler (g++ or clang++; Debian/Ubuntu: apt-get install cmake make g++; for the ' +
    'CUDA backend also the CUDA toolkit, nvcc), then run `npm rebuild difflm`.',
);
process.exit(1);
