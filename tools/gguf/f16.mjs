// Float conversions for tools/gguf/write-gguf.mjs: F32/BF16/F16 source values to the F16 or F32
// values a GGUF holds, counting every conversion that is not exact.
import { endianness } from 'node:os';

// The conversions reinterpret file bytes as typed arrays, which is only right on little-endian.
if (endianness() !== 'LE') throw new Error('write-gguf.mjs assumes a little-endian machine');

/** float32 bit pattern -> float16 bit pattern, round to nearest even (overflow -> inf). */
export function f32BitsToF16(u) {
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0); // inf / nan
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // F16 subnormal m * 2^-24: m = (1.mant) * 2^(e - 1 + 24 - 10) in units of the f32 mantissa
    if (e < -10) return sign; // below half the smallest subnormal
    const full = mant | 0x800000;
    const shift = 14 - e; // 14..24
    let m = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (m & 1) === 1)) m += 1;
    return sign | m;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h += 1; // a carry may reach inf: right
  return sign | h;
}

const F16_TO_F32 = (() => {
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0) table[h] = s * m * 2 ** -24;
    else if (e === 31) table[h] = m ? NaN : s * Infinity;
    else table[h] = s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return table;
})();

/** Safetensors dtypes accepted as input. */
export const SOURCE_DTYPES = new Set(['F32', 'BF16', 'F16']);

/**
 * Source bytes (`count` values of `dtype`) -> { f16: Uint16Array, f32: Float32Array } as asked,
 * counting inexact conversions into `stats`.
 */
export function convertValues(bytes, dtype, count, want, stats) {
  const src32 = new Float32Array(count); // the source values, exactly
  if (dtype === 'F32') {
    src32.set(new Float32Array(bytes.buffer, bytes.byteOffset, count));
  } else if (dtype === 'BF16') {
    const u16 = new Uint16Array(bytes.buffer, bytes.byteOffset, count);
    const u32 = new Uint32Array(src32.buffer);
    for (let i = 0; i < count; i++) u32[i] = u16[i] << 16;
  } else if (dtype === 'F16') {
    const u16 = new Uint16Array(bytes.buffer, bytes.byteOffset, count);
    for (let i = 0; i < count; i++) src32[i] = F16_TO_F32[u16[i]];
  } else {
    throw new Error(`unsupported source dtype ${dtype}`);
  }
  if (want === 'f32') return src32;
  if (dtype === 'F16') return new Uint16Array(bytes.buffer, bytes.byteOffset, count).slice();
  const out = new Uint16Array(count);
  const bits = new Uint32Array(src32.buffer);
  for (let i = 0; i < count; i++) {
    const h = f32BitsToF16(bits[i]);
    out[i] = h;
    const back = F16_TO_F32[h];
    const v = src32[i];
    if (back !== v) {
      if (!Number.isFinite(back) && Number.isFinite(v)) {
        throw new Error(`value ${v} overflows float16 (largest finite 65504)`);
      }
      stats.inexact += 1;
      const diff = Math.abs(back - v);
      if (diff > stats.maxAbsDiff) stats.maxAbsDiff = diff;
    }
  }
  return out;
}
