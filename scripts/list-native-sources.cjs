// Prints the engine and addon sources for binding.gyp (the same files CMakeLists.txt globs), so
// the two build systems can never list different files.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const dirs = [
  'native/engine',
  'native/engine/cpu',
  'native/engine/model',
  'native/engine/decode',
  'native/addon',
];
const files = [];
for (const dir of dirs) {
  for (const name of fs.readdirSync(path.join(root, dir)).sort()) {
    if (name.endsWith('.cpp')) files.push(`${dir}/${name}`);
  }
}
process.stdout.write(files.join(' '));
