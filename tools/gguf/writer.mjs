// GGUF writing for tools/gguf/write-gguf.mjs: the header byte buffer, the metadata, and
// convertLlamaFolder (GGUF file plus the optional F16 safetensors copy, then the read-back check).
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { basename, join, resolve } from 'node:path';
import {
  ALIGNMENT,
  FILE_TYPE_MOSTLY_F16,
  GGML,
  GGML_SIZE,
  GGUF_MAGIC,
  GGUF_VERSION,
  T,
} from './constants.mjs';
import { convertTensor, permuteRows, readLlamaConfig, tensorPlan } from './llama-plan.mjs';
import { verifyGguf } from './reader.mjs';
import { asBytes, readSourceTensors, safetensorsHeader } from './safetensors.mjs';
import { tokenizerMetadata } from './tokenizer.mjs';

/** Growable little-endian byte buffer for the header. */
class ByteWriter {
  constructor() {
    this.buf = Buffer.alloc(1 << 16);
    this.len = 0;
  }
  reserve(n) {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }
  u32(v) {
    this.reserve(4);
    this.buf.writeUInt32LE(v, this.len);
    this.len += 4;
  }
  i32(v) {
    this.reserve(4);
    this.buf.writeInt32LE(v, this.len);
    this.len += 4;
  }
  u64(v) {
    this.reserve(8);
    this.buf.writeBigUInt64LE(BigInt(v), this.len);
    this.len += 8;
  }
  f32(v) {
    this.reserve(4);
    this.buf.writeFloatLE(v, this.len);
    this.len += 4;
  }
  bool(v) {
    this.reserve(1);
    this.buf.writeUInt8(v ? 1 : 0, this.len);
    this.len += 1;
  }
  str(s) {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.reserve(b.length);
    b.copy(this.buf, this.len);
    this.len += b.length;
  }
  scalar(type, v) {
    switch (type) {
      case T.UINT32:
        return this.u32(v);
      case T.INT32:
        return this.i32(v);
      case T.FLOAT32:
        return this.f32(v);
      case T.BOOL:
        return this.bool(v);
      case T.STRING:
        return this.str(v);
      case T.UINT64:
        return this.u64(v);
      default:
        throw new Error(`metadata type ${type} is not written by this tool`);
    }
  }
  kv(key, type, value) {
    this.str(key);
    if (Array.isArray(type)) {
      this.u32(T.ARRAY);
      this.u32(type[1]);
      this.u64(value.length);
      for (const v of value) this.scalar(type[1], v);
    } else {
      this.u32(type);
      this.scalar(type, value);
    }
  }
  pad(alignment) {
    const n = (alignment - (this.len % alignment)) % alignment;
    this.reserve(n);
    this.buf.fill(0, this.len, this.len + n);
    this.len += n;
  }
  bytes() {
    return this.buf.subarray(0, this.len);
  }
}

const alignUp = (n) => Math.ceil(n / ALIGNMENT) * ALIGNMENT;

/** The metadata written for `cfg` (list of [key, type, value]). */
function metadata(cfg, name, tokenizerKv) {
  return [
    ['general.architecture', T.STRING, 'llama'],
    ['general.name', T.STRING, name],
    ['general.alignment', T.UINT32, ALIGNMENT],
    ['general.file_type', T.UINT32, FILE_TYPE_MOSTLY_F16],
    ['general.quantization_version', T.UINT32, 2],
    ['llama.vocab_size', T.UINT32, cfg.vocab],
    ['llama.context_length', T.UINT32, cfg.ctx],
    ['llama.embedding_length', T.UINT32, cfg.dModel],
    ['llama.block_count', T.UINT32, cfg.nLayers],
    ['llama.feed_forward_length', T.UINT32, cfg.ff],
    ['llama.attention.head_count', T.UINT32, cfg.nHead],
    ['llama.attention.head_count_kv', T.UINT32, cfg.nKvHead],
    ['llama.rope.freq_base', T.FLOAT32, cfg.ropeTheta],
    ['llama.rope.dimension_count', T.UINT32, cfg.headDim],
    ['llama.attention.layer_norm_rms_epsilon', T.FLOAT32, cfg.eps],
    ...tokenizerKv,
  ];
}

function writeAll(fd, bytes) {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
}

/**
 * Converts the Llama folder `dir` to `out` (GGUF v3, F16) and, with `f16Dir`, writes the same
 * values as an F16 safetensors folder. Returns a summary; verifies the file unless `verify` is
 * false.
 */
export function convertLlamaFolder(dir, out, { f16Dir, name, verify = true } = {}) {
  const t0 = performance.now();
  dir = resolve(dir);
  const cfg = readLlamaConfig(dir);
  const source = readSourceTensors(dir);
  const plan = tensorPlan(cfg, source);
  const tokenizer = tokenizerMetadata(dir, cfg);
  const kv = metadata(cfg, name ?? basename(dir), tokenizer.kv);

  // Header: magic, version, counts, metadata, tensor records; then the aligned data section.
  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(GGUF_VERSION);
  w.u64(plan.length);
  w.u64(kv.length);
  for (const [k, type, v] of kv) w.kv(k, type, v);
  let offset = 0;
  for (const t of plan) {
    t.ggmlType = t.norm ? GGML.F32 : GGML.F16;
    t.count = t.shape.reduce((a, b) => a * b, 1);
    t.nbytes = t.count * GGML_SIZE[t.ggmlType];
    t.offset = offset;
    offset = alignUp(offset + t.nbytes);
    w.str(t.gguf);
    w.u32(t.shape.length);
    for (const n of [...t.shape].reverse()) w.u64(n); // ggml ne[]: the fastest dimension first
    w.u32(t.ggmlType);
    w.u64(t.offset);
  }
  w.pad(ALIGNMENT);
  const dataStart = w.len;

  const stats = { inexact: 0, maxAbsDiff: 0 };
  const fd = openSync(out, 'w');
  let copyFd;
  try {
    writeAll(fd, w.bytes());
    if (f16Dir) {
      mkdirSync(f16Dir, { recursive: true });
      copyFd = openSync(join(f16Dir, 'model.safetensors'), 'w');
      const records = plan.map((t) => ({
        name: t.hf,
        dtype: t.norm ? 'F32' : 'F16',
        shape: t.shape,
        nbytes: t.nbytes,
      }));
      writeAll(copyFd, safetensorsHeader(records));
    }
    const zeros = Buffer.alloc(ALIGNMENT);
    for (const t of plan) {
      const values = convertTensor(source, t, stats);
      if (copyFd !== undefined) writeAll(copyFd, asBytes(values));
      const ordered = t.permuteHeads ? permuteRows(values, t.permuteHeads, t.shape[1]) : values;
      writeAll(fd, asBytes(ordered));
      writeAll(fd, zeros.subarray(0, alignUp(t.nbytes) - t.nbytes));
    }
  } finally {
    closeSync(fd);
    if (copyFd !== undefined) closeSync(copyFd);
  }
  if (f16Dir) {
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) {
      if (existsSync(join(dir, f))) copyFileSync(join(dir, f), join(f16Dir, f));
    }
    const config = { ...cfg.raw, torch_dtype: 'float16' };
    writeFileSync(join(f16Dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  }
  const sourceDtypes = [...new Set(plan.map((t) => source.get(t.hf).dtype))];
  const summary = {
    gguf: resolve(out),
    f16Copy: f16Dir ? resolve(f16Dir) : null,
    tensors: plan.length,
    parameters: plan.reduce((a, t) => a + t.count, 0),
    bytes: statSync(out).size,
    dataStart,
    sourceDtypes,
    tiedEmbeddings: cfg.tied,
    unusedTokenIds: tokenizer.unused,
    merges: tokenizer.merges,
    conversion: {
      inexactValues: stats.inexact,
      maxAbsDiff: stats.maxAbsDiff,
      exact: stats.inexact === 0,
    },
    seconds: 0,
    verified: false,
  };
  if (verify) {
    verifyGguf(out, { dir, cfg, source, plan, kv, dataStart });
    summary.verified = true;
  }
  summary.seconds = (performance.now() - t0) / 1000;
  return summary;
}
