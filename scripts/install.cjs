#!/usr/bin/env node
// npm install hook: use a prebuilt binary that loads, else build from source with cmake-js,
// else with node-gyp (binding.gyp). Says in one line which it took.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');
const fromSource =
  process.env.npm_config_build_from_source === 'true' ||
  process.env.DIFFLM_BUILD_FROM_SOURCE === '1';

function prebuildLoads() {
  // Test-load in a child process so a broken binary cannot take this process down.
  const probe = `require(require('node-gyp-build').path(${JSON.stringify(root)}))`;
  const r = spawnSync(process.execPath, ['-e', probe], { cwd: root, stdio: 'ignore' });
  return r.status === 0;
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

if (!fromSource && prebuildLoads()) {
  console.log('difflm: using the prebuilt native binary');
  process.exit(0);
}
const cmakeJs = resolveBin('cmake-js', 'bin/cmake-js');
if (cmakeJs && spawnSync('cmake', ['--version'], { stdio: 'ignore' }).status === 0) {
  console.log('difflm: building the native addon from source with cmake-js');
  if (run(process.execPath, [cmakeJs, 'compile', '--log-level', 'warn'])) process.exit(0);
  console.log('difflm: cmake-js build failed; trying node-gyp');
}
const nodeGyp =
  resolveBin('node-gyp', 'bin/node-gyp.js') ||
  (process.env.npm_config_node_gyp ? process.env.npm_config_node_gyp : null);
if (nodeGyp) {
  console.log('difflm: building the native addon from source with node-gyp');
  if (run(process.execPath, [nodeGyp, 'rebuild'])) process.exit(0);
}
console.error(
  'difflm: could not build the native addon. Install CMake (>= 3.18) and a C++17 compiler ' +
    '(g++ or clang++; on Debian/Ubuntu: apt-get install cmake g++ make), then run `npm rebuild difflm`.',
);
process.exit(1);
