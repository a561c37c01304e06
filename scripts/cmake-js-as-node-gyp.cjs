#!/usr/bin/env node
// prebuildify runs `<node-gyp> rebuild --target=… --devdir=… --arch=… --release|--debug` and has
// no cmake-js backend; this stands in for node-gyp and builds with cmake-js instead (CUDA included
// when nvcc is found; extra cmake-js flags from DIFFLM_CMAKE_ARGS). The addon is N-API, so the
// target Node version does not matter.
'use strict';
const { spawnSync } = require('node:child_process');

const argv = process.argv.slice(2);
const arch = (argv.find((a) => a.startsWith('--arch=')) || `--arch=${process.arch}`).slice(7);
const args = [require.resolve('cmake-js/bin/cmake-js'), 'rebuild', '--log-level', 'warn'];
args.push('--arch', arch);
if (argv.includes('--debug')) args.push('--debug');
const extra = (process.env.DIFFLM_CMAKE_ARGS || '').split(/\s+/).filter(Boolean);
const r = spawnSync(process.execPath, [...args, ...extra], { stdio: 'inherit' });
process.exit(r.status === null ? 1 : r.status);
