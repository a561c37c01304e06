// Safetensors for tools/gguf/write-gguf.mjs: the source tensors of a Hugging Face folder (one
// file or the shards of its index), raw byte reads, and the header of the F16 safetensors copy.
import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';

/** Header records of one safetensors file: name -> { dtype, shape, file, offset, nbytes }. */
function readSafetensorsHeader(file) {
  const fd = openSync(file, 'r');
  try {
    const lenBuf = Buffer.alloc(8);
    readSync(fd, lenBuf, 0, 8, 0);
    const n = Number(lenBuf.readBigUInt64LE(0));
    const hbuf = Buffer.alloc(n);
    readSync(fd, hbuf, 0, n, 8);
    const header = JSON.parse(hbuf.toString('utf8'));
    const out = new Map();
    for (const [name, info] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const [b, e] = info.data_offsets;
      out.set(name, {
        dtype: info.dtype,
        shape: info.shape,
        file,
        offset: 8 + n + b,
        nbytes: e - b,
      });
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

/** Every tensor of the folder's model.safetensors, or of the shards its index lists. */
export function readSourceTensors(dir) {
  const single = join(dir, 'model.safetensors');
  if (existsSync(single)) return readSafetensorsHeader(single);
  const index = join(dir, 'model.safetensors.index.json');
  if (!existsSync(index))
    throw new Error(`${dir}: no model.safetensors or model.safetensors.index.json`);
  const map = JSON.parse(readFileSync(index, 'utf8')).weight_map;
  const out = new Map();
  for (const shard of [...new Set(Object.values(map))].sort()) {
    for (const [k, v] of readSafetensorsHeader(join(dir, shard))) out.set(k, v);
  }
  return out;
}

/** Raw bytes [offset, offset + n) of a file, in a fresh (4-byte aligned) buffer. */
export function readBytes(file, offset, n) {
  const buf = Buffer.from(new ArrayBuffer(n));
  const fd = openSync(file, 'r');
  try {
    let done = 0;
    while (done < n) {
      const got = readSync(fd, buf, done, n - done, offset + done);
      if (got === 0) throw new Error(`${file}: unexpected end of file at ${offset + done}`);
      done += got;
    }
  } finally {
    closeSync(fd);
  }
  return buf;
}

/** The bytes of a typed array (a view, not a copy). */
export const asBytes = (typed) => Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength);

/** A safetensors header (length prefix + JSON padded to 8 bytes) for `records` in order. */
export function safetensorsHeader(records) {
  const header = { __metadata__: { format: 'pt', source: 'tools/gguf/write-gguf.mjs' } };
  let offset = 0;
  for (const r of records) {
    header[r.name] = { dtype: r.dtype, shape: r.shape, data_offsets: [offset, offset + r.nbytes] };
    offset += r.nbytes;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Buffer.alloc(Math.ceil(json.length / 8) * 8, 0x20);
  json.copy(padded);
  json = padded;
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json]);
}
