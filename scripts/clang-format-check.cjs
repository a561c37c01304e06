#!/usr/bin/env node
// Checks (or with --fix, applies) clang-format on every C++/CUDA source of the project.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const fix = process.argv.includes('--fix');
const exts = ['.cpp', '.h', '.cu', '.cuh'];
const skip = new Set(['node_modules', 'build', 'dist', 'prebuilds', '.git']);

function walk(dir, out) {
  for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
    if (skip.has(ent.name) || ent.name.startsWith('build-') || ent.name.startsWith('.')) continue;
    const p = path.join(dir, ent.name);
    if (ent.isDirectory()) walk(p, out);
    else if (exts.includes(path.extname(ent.name))) out.push(p);
  }
  return out;
}

const bin = ['clang-format', 'clang-format-14', 'clang-format-15', 'clang-format-16'].find(
  (b) => spawnSync(b, ['--version'], { stdio: 'ignore' }).status === 0,
);
if (!bin) {
  console.error('clang-format not found: install it (Debian: apt-get install clang-format)');
  process.exit(1);
}
const files = walk(root, []).filter((f) => !f.includes(`${path.sep}fixtures${path.sep}`));
const args = fix ? ['-i', ...files] : ['--dry-run', '--Werror', ...files];
const r = spawnSync(bin, args, { stdio: 'inherit' });
if (r.status !== 0) {
  console.error(
    `clang-format: ${fix ? 'failed' : 'sources need formatting; run `npm run format`'}`,
  );
  process.exit(1);
}
console.log(`clang-format: ${files.length} files ${fix ? 'formatted' : 'clean'}`);
