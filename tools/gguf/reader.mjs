// GGUF reading for tools/gguf/write-gguf.mjs: readGguf (header, metadata, tensor records) and the
// read-back check of a converted file against a fresh conversion of its source.
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { ALIGNMENT, GGML, GGUF_MAGIC, GGUF_VERSION, T } from './constants.mjs';
import { convertTensor, unpermuteRows } from './llama-plan.mjs';
import { asBytes, readBytes } from './safetensors.mjs';

/** Sequential little-endian reader over a file, reading ahead in 1 MiB pieces. */
class FileReader {
  constructor(file) {
    this.fd = openSync(file, 'r');
    this.size = statSync(file).size;
    this.pos = 0;
    this.buf = Buffer.alloc(0);
    this.bufStart = 0;
  }
  need(n) {
    if (this.pos + n > this.size)
      throw new Error(`GGUF ends early (need ${n} bytes at ${this.pos})`);
    if (this.pos >= this.bufStart && this.pos + n <= this.bufStart + this.buf.length) return;
    const len = Math.min(Math.max(n, 1 << 20), this.size - this.pos);
    this.buf = Buffer.alloc(len);
    readSync(this.fd, this.buf, 0, len, this.pos);
    this.bufStart = this.pos;
  }
  take(n) {
    this.need(n);
    const at = this.pos - this.bufStart;
    this.pos += n;
    return at;
  }
  u8() {
    const a = this.take(1);
    return this.buf.readUInt8(a);
  }
  i8() {
    const a = this.take(1);
    return this.buf.readInt8(a);
  }
  u16() {
    const a = this.take(2);
    return this.buf.readUInt16LE(a);
  }
  i16() {
    const a = this.take(2);
    return this.buf.readInt16LE(a);
  }
  u32() {
    const a = this.take(4);
    return this.buf.readUInt32LE(a);
  }
  i32() {
    const a = this.take(4);
    return this.buf.readInt32LE(a);
  }
  f32() {
    const a = this.take(4);
    return this.buf.readFloatLE(a);
  }
  f64() {
    const a = this.take(8);
    return this.buf.readDoubleLE(a);
  }
  u64() {
    const a = this.take(8);
    return Number(this.buf.readBigUInt64LE(a));
  }
  i64() {
    const a = this.take(8);
    return Number(this.buf.readBigInt64LE(a));
  }
  str() {
    const n = this.u64();
    const a = this.take(n);
    return this.buf.toString('utf8', a, a + n);
  }
  value(type) {
    switch (type) {
      case T.UINT8:
        return this.u8();
      case T.INT8:
        return this.i8();
      case T.UINT16:
        return this.u16();
      case T.INT16:
        return this.i16();
      case T.UINT32:
        return this.u32();
      case T.INT32:
        return this.i32();
      case T.FLOAT32:
        return this.f32();
      case T.BOOL:
        return this.u8() !== 0;
      case T.STRING:
        return this.str();
      case T.UINT64:
        return this.u64();
      case T.INT64:
        return this.i64();
      case T.FLOAT64:
        return this.f64();
      case T.ARRAY: {
        const elem = this.u32();
        const n = this.u64();
        const out = new Array(n);
        for (let i = 0; i < n; i++) out[i] = this.value(elem);
        return { elem, values: out };
      }
      default:
        throw new Error(`unknown GGUF value type ${type}`);
    }
  }
  close() {
    closeSync(this.fd);
  }
}

/**
 * Reads a GGUF file's header: { version, metadata: Map key -> { type, value }, tensors:
 * [{ name, ne, type, offset }], dataStart, size }.
 */
export function readGguf(file) {
  const r = new FileReader(file);
  try {
    if (r.u32() !== GGUF_MAGIC) throw new Error(`${file} is not a GGUF file`);
    const version = r.u32();
    const nTensors = r.u64();
    const nKv = r.u64();
    const metadata = new Map();
    for (let i = 0; i < nKv; i++) {
      const key = r.str();
      const type = r.u32();
      metadata.set(key, { type, value: r.value(type) });
    }
    const tensors = [];
    for (let i = 0; i < nTensors; i++) {
      const name = r.str();
      const nd = r.u32();
      const ne = [];
      for (let k = 0; k < nd; k++) ne.push(r.u64());
      tensors.push({ name, ne, type: r.u32(), offset: r.u64() });
    }
    const align = metadata.get('general.alignment')?.value ?? ALIGNMENT;
    const dataStart = Math.ceil(r.pos / align) * align;
    return { version, metadata, tensors, dataStart, size: r.size };
  } finally {
    r.close();
  }
}

/** Throws unless `out` holds exactly what convertLlamaFolder meant to write. */
export function verifyGguf(out, { source, plan, kv, dataStart }) {
  const g = readGguf(out);
  const fail = (what) => {
    throw new Error(`GGUF read-back of ${out}: ${what}`);
  };
  if (g.version !== GGUF_VERSION) fail(`version ${g.version}`);
  if (g.dataStart !== dataStart) fail(`data starts at ${g.dataStart}, written at ${dataStart}`);
  if (g.metadata.size !== kv.length) fail(`${g.metadata.size} metadata keys, wrote ${kv.length}`);
  for (const [key, type, value] of kv) {
    const got = g.metadata.get(key);
    if (!got) fail(`metadata ${key} missing`);
    if (Array.isArray(type)) {
      if (got.type !== T.ARRAY || got.value.elem !== type[1]) fail(`${key} has the wrong type`);
      if (!isDeepStrictEqual(got.value.values, value)) fail(`${key} differs`);
    } else {
      if (got.type !== type) fail(`${key} has type ${got.type}, wrote ${type}`);
      const same = type === T.FLOAT32 ? got.value === Math.fround(value) : got.value === value;
      if (!same) fail(`${key} = ${got.value}, wrote ${value}`);
    }
  }
  if (g.tensors.length !== plan.length) fail(`${g.tensors.length} tensors, wrote ${plan.length}`);
  const stats = { inexact: 0, maxAbsDiff: 0 };
  for (const [i, t] of plan.entries()) {
    const rec = g.tensors[i];
    if (rec.name !== t.gguf) fail(`tensor ${i} is ${rec.name}, wrote ${t.gguf}`);
    if (!isDeepStrictEqual(rec.ne, [...t.shape].reverse())) fail(`${t.gguf} ne [${rec.ne}]`);
    if (rec.type !== t.ggmlType || rec.offset !== t.offset) fail(`${t.gguf} type/offset`);
    if (rec.offset % ALIGNMENT !== 0) fail(`${t.gguf} offset ${rec.offset} is not aligned`);
    const bytes = readBytes(out, g.dataStart + rec.offset, t.nbytes);
    const fileValues =
      t.ggmlType === GGML.F16
        ? new Uint16Array(bytes.buffer, 0, t.count)
        : new Float32Array(bytes.buffer, 0, t.count);
    const hfOrder = t.permuteHeads
      ? unpermuteRows(fileValues, t.permuteHeads, t.shape[1])
      : fileValues;
    const expected = convertTensor(source, t, stats);
    if (!Buffer.from(hfOrder.buffer).equals(asBytes(expected))) fail(`${t.gguf} data differs`);
  }
  const last = plan.at(-1);
  if (g.dataStart + last.offset + last.nbytes > g.size) fail('file is shorter than its tensors');
}
