// AVX-512 GEMM kernels. Each micro-kernel computes an MR x NR tile of C as MR x NR dot
// products over K, 16 lanes (32 for the BF16 dot) at a time, with a masked tail, so K need not
// be a multiple of anything. Target attributes (not file-wide flags) keep every inline function
// shared with other files compiled for the baseline CPU.
#include "gemm.h"
#include "x86_intrinsics.h"

#if defined(__x86_64__)
#define DIFFLM_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma,f16c")))
#define DIFFLM_AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,fma,f16c")))

namespace difflm {
namespace {

constexpr int MR = 4, NR = 4;
// K elements per pass (each pass adds its partial sums into C). Measured on a Zen 4 VM
// (bench/gemm-ab.js, BF16 weights): passes of 4096 are 8-16 % faster than passes of 1024 at
// K >= 2048 (fewer reductions and C updates; the weight strip then streams from L2, which
// keeps up), 512 is slower, and 16384 gains nothing more.
constexpr int64_t kKChunk = 4096;

struct LoadF32 {
  DIFFLM_AVX512 static __m512 load(const void* row, int64_t k, __mmask16 m) {
    return _mm512_maskz_loadu_ps(m, static_cast<const float*>(row) + k);
  }
  DIFFLM_AVX512 static __m512 load(const void* row, int64_t k) {
    return _mm512_loadu_ps(static_cast<const float*>(row) + k);
  }
};
struct LoadF16 {
  DIFFLM_AVX512 static __m512 load(const void* row, int64_t k, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(row) + k));
  }
  DIFFLM_AVX512 static __m512 load(const void* row, int64_t k) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(
        reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(row) + k)));
  }
};
struct LoadBF16 {
  DIFFLM_AVX512 static __m512 load(const void* row, int64_t k, __mmask16 m) {
    __m512i wide =
        _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(row) + k));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
  }
  DIFFLM_AVX512 static __m512 load(const void* row, int64_t k) {
    __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(
        reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(row) + k)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
  }
};

// One tile with float32 activations: C[i][j] = sum_k A[i][k] * W[j][k].
template <int R, int S, class L>
DIFFLM_AVX512 void tile_f32(const float* A, int64_t lda, const char* W, size_t w_stride, int64_t K,
                            float* C, int64_t ldc, bool acc_c) {
  __m512 acc[R][S];
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < S; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; k += 16) {
    const __mmask16 m =
        K - k >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (K - k)) - 1);
    __m512 a[R];
    for (int i = 0; i < R; ++i) a[i] = _mm512_maskz_loadu_ps(m, A + i * lda + k);
    for (int j = 0; j < S; ++j) {
      __m512 w = L::load(W + j * w_stride, k, m);
      for (int i = 0; i < R; ++i) acc[i][j] = _mm512_fmadd_ps(a[i], w, acc[i][j]);
    }
  }
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < S; ++j)
      C[i * ldc + j] = (acc_c ? C[i * ldc + j] : 0.f) + _mm512_reduce_add_ps(acc[i][j]);
}

// One tile with bf16 activations and bf16 weights, pairs summed by VDPBF16PS.
template <int R, int S>
DIFFLM_AVX512BF16 void tile_bf16dot(const uint16_t* A, int64_t lda, const char* W, size_t w_stride,
                                    int64_t K, float* C, int64_t ldc, bool acc_c) {
  __m512 acc[R][S];
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < S; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; k += 32) {
    const __mmask32 m = K - k >= 32 ? static_cast<__mmask32>(0xffffffffu)
                                    : static_cast<__mmask32>((1u << (K - k)) - 1);
    __m512i a[R];
    for (int i = 0; i < R; ++i) a[i] = _mm512_maskz_loadu_epi16(m, A + i * lda + k);
    for (int j = 0; j < S; ++j) {
      __m512i w =
          _mm512_maskz_loadu_epi16(m, reinterpret_cast<const uint16_t*>(W + j * w_stride) + k);
      for (int i = 0; i < R; ++i)
        acc[i][j] = _mm512_dpbf16_ps(acc[i][j], (__m512bh)a[i], (__m512bh)w);
    }
  }
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < S; ++j)
      C[i * ldc + j] = (acc_c ? C[i * ldc + j] : 0.f) + _mm512_reduce_add_ps(acc[i][j]);
}

// The full 4 x 4 tiles, with named accumulators: GCC keeps arrays of vectors in memory (storing
// them every iteration), so the hot kernels spell out their 16 registers.
// clang-format off
#define DIFFLM_ACC16(X) \
  X(0, 0) X(0, 1) X(0, 2) X(0, 3) X(1, 0) X(1, 1) X(1, 2) X(1, 3) \
  X(2, 0) X(2, 1) X(2, 2) X(2, 3) X(3, 0) X(3, 1) X(3, 2) X(3, 3)
// clang-format on

// Lanes i and i + 8 of a and of b summed: [a lo | b lo] + [a hi | b hi] (128-bit blocks 0, 1
// against 2, 3).
DIFFLM_AVX512 inline __m512 add_halves256(__m512 a, __m512 b) {
  return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
}
// Within each 256-bit half of p and of q: lanes i and i + 4 summed (blocks 0 + 1, 2 + 3).
DIFFLM_AVX512 inline __m512 add_halves128(__m512 p, __m512 q) {
  return _mm512_add_ps(_mm512_shuffle_f32x4(p, q, 0x88), _mm512_shuffle_f32x4(p, q, 0xDD));
}

// The 16 accumulators of a 4 x 4 tile (c_ij as v[4i + j]) reduced together and added into C:
// a transposing tree of 15 vector adds instead of 16 separate reductions. Each sum pairs the
// lanes exactly as _mm512_reduce_add_ps does (halves of 256, 128, 64 and 32 bits, in that
// order), so results are bit-identical to the edge tiles and the GEMV path.
DIFFLM_AVX512 inline void reduce_4x4_into(__m512 v0, __m512 v1, __m512 v2, __m512 v3, __m512 v4,
                                          __m512 v5, __m512 v6, __m512 v7, __m512 v8, __m512 v9,
                                          __m512 v10, __m512 v11, __m512 v12, __m512 v13,
                                          __m512 v14, __m512 v15, float* C, int64_t ldc,
                                          bool acc_c) {
  const __m512 s0 = add_halves256(v0, v1), s1 = add_halves256(v2, v3), s2 = add_halves256(v4, v5),
               s3 = add_halves256(v6, v7), s4 = add_halves256(v8, v9), s5 = add_halves256(v10, v11),
               s6 = add_halves256(v12, v13), s7 = add_halves256(v14, v15);
  // block b of u_n holds v_(4n + b)'s four partial sums
  const __m512 u0 = add_halves128(s0, s1), u1 = add_halves128(s2, s3), u2 = add_halves128(s4, s5),
               u3 = add_halves128(s6, s7);
  // lanes 0 + 2 and 1 + 3 within each block, then the two remaining lanes
  const __m512 w0 = _mm512_add_ps(_mm512_shuffle_ps(u0, u1, 0x44), _mm512_shuffle_ps(u0, u1, 0xEE));
  const __m512 w1 = _mm512_add_ps(_mm512_shuffle_ps(u2, u3, 0x44), _mm512_shuffle_ps(u2, u3, 0xEE));
  // lane 4b + q now holds the sum of v_(4q + b), i.e. c_qb: transpose to row-major
  const __m512 t = _mm512_add_ps(_mm512_shuffle_ps(w0, w1, 0x88), _mm512_shuffle_ps(w0, w1, 0xDD));
  const __m512 r = _mm512_permutexvar_ps(
      _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), t);
  const __m128 rows[4] = {_mm512_extractf32x4_ps(r, 0), _mm512_extractf32x4_ps(r, 1),
                          _mm512_extractf32x4_ps(r, 2), _mm512_extractf32x4_ps(r, 3)};
  for (int i = 0; i < 4; ++i) {
    const __m128 base = acc_c ? _mm_loadu_ps(C + i * ldc) : _mm_setzero_ps();
    _mm_storeu_ps(C + i * ldc, _mm_add_ps(base, rows[i]));
  }
}

template <class L>
DIFFLM_AVX512 void tile_f32_4x4(const float* A, int64_t lda, const char* W, size_t w_stride,
                                int64_t K, float* C, int64_t ldc, bool acc_c) {
#define DIFFLM_ZERO(i, j) __m512 c##i##j = _mm512_setzero_ps();
  DIFFLM_ACC16(DIFFLM_ZERO)
#undef DIFFLM_ZERO
  const float *a0 = A, *a1 = A + lda, *a2 = A + 2 * lda, *a3 = A + 3 * lda;
  const char *w0 = W, *w1 = W + w_stride, *w2 = W + 2 * w_stride, *w3 = W + 3 * w_stride;
#define DIFFLM_FMA(i, j) c##i##j = _mm512_fmadd_ps(x##i, y##j, c##i##j);
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {  // plain loads; the masked ones only for the tail
    const __m512 x0 = _mm512_loadu_ps(a0 + k), x1 = _mm512_loadu_ps(a1 + k);
    const __m512 x2 = _mm512_loadu_ps(a2 + k), x3 = _mm512_loadu_ps(a3 + k);
    const __m512 y0 = L::load(w0, k), y1 = L::load(w1, k);
    const __m512 y2 = L::load(w2, k), y3 = L::load(w3, k);
    DIFFLM_ACC16(DIFFLM_FMA)
  }
  if (k < K) {
    const __mmask16 m = static_cast<__mmask16>((1u << (K - k)) - 1);
    const __m512 x0 = _mm512_maskz_loadu_ps(m, a0 + k), x1 = _mm512_maskz_loadu_ps(m, a1 + k);
    const __m512 x2 = _mm512_maskz_loadu_ps(m, a2 + k), x3 = _mm512_maskz_loadu_ps(m, a3 + k);
    const __m512 y0 = L::load(w0, k, m), y1 = L::load(w1, k, m);
    const __m512 y2 = L::load(w2, k, m), y3 = L::load(w3, k, m);
    DIFFLM_ACC16(DIFFLM_FMA)
  }
#undef DIFFLM_FMA
  reduce_4x4_into(c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33, C,
                  ldc, acc_c);
}

DIFFLM_AVX512BF16 void tile_bf16dot_4x4(const uint16_t* A, int64_t lda, const char* W,
                                        size_t w_stride, int64_t K, float* C, int64_t ldc,
                                        bool acc_c) {
#define DIFFLM_ZERO(i, j) __m512 c##i##j = _mm512_setzero_ps();
  DIFFLM_ACC16(DIFFLM_ZERO)
#undef DIFFLM_ZERO
  const uint16_t *a0 = A, *a1 = A + lda, *a2 = A + 2 * lda, *a3 = A + 3 * lda;
  const uint16_t* w0 = reinterpret_cast<const uint16_t*>(W);
  const uint16_t* w1 = reinterpret_cast<const uint16_t*>(W + w_stride);
  const uint16_t* w2 = reinterpret_cast<const uint16_t*>(W + 2 * w_stride);
  const uint16_t* w3 = reinterpret_cast<const uint16_t*>(W + 3 * w_stride);
#define DIFFLM_DOT(i, j) c##i##j = _mm512_dpbf16_ps(c##i##j, x##i, y##j);
  int64_t k = 0;
  for (; k + 32 <= K; k += 32) {  // plain loads; the masked ones only for the tail
    const __m512bh x0 = (__m512bh)_mm512_loadu_si512(a0 + k);
    const __m512bh x1 = (__m512bh)_mm512_loadu_si512(a1 + k);
    const __m512bh x2 = (__m512bh)_mm512_loadu_si512(a2 + k);
    const __m512bh x3 = (__m512bh)_mm512_loadu_si512(a3 + k);
    const __m512bh y0 = (__m512bh)_mm512_loadu_si512(w0 + k);
    const __m512bh y1 = (__m512bh)_mm512_loadu_si512(w1 + k);
    const __m512bh y2 = (__m512bh)_mm512_loadu_si512(w2 + k);
    const __m512bh y3 = (__m512bh)_mm512_loadu_si512(w3 + k);
    DIFFLM_ACC16(DIFFLM_DOT)
  }
  if (k < K) {
    const __mmask32 m = static_cast<__mmask32>((1u << (K - k)) - 1);
    const __m512bh x0 = (__m512bh)_mm512_maskz_loadu_epi16(m, a0 + k);
    const __m512bh x1 = (__m512bh)_mm512_maskz_loadu_epi16(m, a1 + k);
    const __m512bh x2 = (__m512bh)_mm512_maskz_loadu_epi16(m, a2 + k);
    const __m512bh x3 = (__m512bh)_mm512_maskz_loadu_epi16(m, a3 + k);
    const __m512bh y0 = (__m512bh)_mm512_maskz_loadu_epi16(m, w0 + k);
    const __m512bh y1 = (__m512bh)_mm512_maskz_loadu_epi16(m, w1 + k);
    const __m512bh y2 = (__m512bh)_mm512_maskz_loadu_epi16(m, w2 + k);
    const __m512bh y3 = (__m512bh)_mm512_maskz_loadu_epi16(m, w3 + k);
    DIFFLM_ACC16(DIFFLM_DOT)
  }
#undef DIFFLM_DOT
  reduce_4x4_into(c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33, C,
                  ldc, acc_c);
}
#undef DIFFLM_ACC16

// One activation row against weight rows [0, rows) (the M = 1 GEMV of left-to-right decoding,
// bound by reading the weights): each weight row is streamed on its own, start to end, which
// reads memory about 2.5x faster here than interleaving rows (measured: 26 vs 10 GB/s on one
// core). The arithmetic is tile_f32<1, 1> / tile_bf16dot<1, 1>'s, chunk by chunk, so results
// do not depend on which path ran.
template <class L>
DIFFLM_AVX512 void rows_f32(const float* A, const char* W, size_t w_stride, int64_t rows, int64_t K,
                            float* C) {
  for (int64_t j = 0; j < rows; ++j) {
    const char* w = W + j * w_stride;
    for (int64_t k0 = 0; k0 < K; k0 += kKChunk) {
      const int64_t k1 = K - k0 < kKChunk ? K : k0 + kKChunk;
      __m512 c = _mm512_setzero_ps();
      int64_t k = k0;
      for (; k + 16 <= k1; k += 16) c = _mm512_fmadd_ps(_mm512_loadu_ps(A + k), L::load(w, k), c);
      if (k < k1) {
        const __mmask16 m = static_cast<__mmask16>((1u << (k1 - k)) - 1);
        c = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, A + k), L::load(w, k, m), c);
      }
      C[j] = (k0 > 0 ? C[j] : 0.f) + _mm512_reduce_add_ps(c);
    }
  }
}

DIFFLM_AVX512BF16 void rows_bf16dot(const uint16_t* A, const char* W, size_t w_stride, int64_t rows,
                                    int64_t K, float* C) {
  for (int64_t j = 0; j < rows; ++j) {
    const uint16_t* w = reinterpret_cast<const uint16_t*>(W + j * w_stride);
    for (int64_t k0 = 0; k0 < K; k0 += kKChunk) {
      const int64_t k1 = K - k0 < kKChunk ? K : k0 + kKChunk;
      __m512 c = _mm512_setzero_ps();
      for (int64_t k = k0; k < k1; k += 32) {
        const __mmask32 m = k1 - k >= 32 ? static_cast<__mmask32>(0xffffffffu)
                                         : static_cast<__mmask32>((1u << (k1 - k)) - 1);
        c = _mm512_dpbf16_ps(c, (__m512bh)_mm512_maskz_loadu_epi16(m, A + k),
                             (__m512bh)_mm512_maskz_loadu_epi16(m, w + k));
      }
      C[j] = (k0 > 0 ? C[j] : 0.f) + _mm512_reduce_add_ps(c);
    }
  }
}

using TileF32 = void (*)(const float*, int64_t, const char*, size_t, int64_t, float*, int64_t,
                         bool);
using TileBf16 = void (*)(const uint16_t*, int64_t, const char*, size_t, int64_t, float*, int64_t,
                          bool);

template <class L>
TileF32 pick_f32(int r, int s) {
  static const TileF32 table[MR][NR] = {
      {tile_f32<1, 1, L>, tile_f32<1, 2, L>, tile_f32<1, 3, L>, tile_f32<1, 4, L>},
      {tile_f32<2, 1, L>, tile_f32<2, 2, L>, tile_f32<2, 3, L>, tile_f32<2, 4, L>},
      {tile_f32<3, 1, L>, tile_f32<3, 2, L>, tile_f32<3, 3, L>, tile_f32<3, 4, L>},
      {tile_f32<4, 1, L>, tile_f32<4, 2, L>, tile_f32<4, 3, L>, tile_f32_4x4<L>}};
  return table[r - 1][s - 1];
}

TileBf16 pick_bf16(int r, int s) {
  static const TileBf16 table[MR][NR] = {
      {tile_bf16dot<1, 1>, tile_bf16dot<1, 2>, tile_bf16dot<1, 3>, tile_bf16dot<1, 4>},
      {tile_bf16dot<2, 1>, tile_bf16dot<2, 2>, tile_bf16dot<2, 3>, tile_bf16dot<2, 4>},
      {tile_bf16dot<3, 1>, tile_bf16dot<3, 2>, tile_bf16dot<3, 3>, tile_bf16dot<3, 4>},
      {tile_bf16dot<4, 1>, tile_bf16dot<4, 2>, tile_bf16dot<4, 3>, tile_bf16dot_4x4}};
  return table[r - 1][s - 1];
}

// Walks the block in chunks of K (kKChunk), NR-row weight strips (reused across the block's
// activation strips) and MR-row activation strips.
template <class Act, class Pick, class Rows>
void walk_block(const GemmBlock& b, const Act* A, Pick pick, Rows rows_fn) {
  const size_t esize = dtype_size(b.W->dtype);
  const size_t w_stride = static_cast<size_t>(b.K) * esize;
  const char* W = static_cast<const char*>(b.W->data);
  if (b.m1 - b.m0 == 1) {  // a single activation row: stream the weight rows one by one
    rows_fn(A + b.m0 * b.K, W + b.n0 * w_stride, w_stride, b.n1 - b.n0, b.K,
            b.C + b.m0 * b.N + b.n0);
    return;
  }
  for (int64_t k0 = 0; k0 < b.K; k0 += kKChunk) {
    const int64_t klen = b.K - k0 < kKChunk ? b.K - k0 : kKChunk;
    int64_t n = b.n0;
    for (; n < b.n1; n += NR) {
      const int s = static_cast<int>(b.n1 - n < NR ? b.n1 - n : NR);
      for (int64_t m = b.m0; m < b.m1; m += MR) {
        const int r = static_cast<int>(b.m1 - m < MR ? b.m1 - m : MR);
        pick(r, s)(A + m * b.K + k0, b.K, W + n * w_stride + k0 * esize, w_stride, klen,
                   b.C + m * b.N + n, b.N, k0 > 0);
      }
    }
  }
}

}  // namespace

void gemm_block_avx512(const GemmBlock& b) {
  switch (b.W->dtype) {
    case DType::F32: walk_block(b, b.A, pick_f32<LoadF32>, rows_f32<LoadF32>); break;
    case DType::F16: walk_block(b, b.A, pick_f32<LoadF16>, rows_f32<LoadF16>); break;
    case DType::BF16: walk_block(b, b.A, pick_f32<LoadBF16>, rows_f32<LoadBF16>); break;
  }
}

void gemm_block_avx512bf16(const GemmBlock& b) {
  walk_block(b, b.A16, pick_bf16, rows_bf16dot);
}

// f32_to_bf16 (dtype.h) 16 lanes at a time, bit for bit: round to nearest even on the bits, NaN
// made quiet. Not VCVTNEPS2BF16, which flushes subnormal inputs to zero.
DIFFLM_AVX512 void round_to_bf16_avx512(const float* src, uint16_t* dst, int64_t n) {
  const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000);
  const __m512i bias = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1);
  const __m512i quiet = _mm512_set1_epi32(0x400000);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i bits = _mm512_loadu_si512(src + i);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(bits, abs_mask), inf);
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), one);
    const __m512i rounded = _mm512_add_epi32(bits, _mm512_add_epi32(bias, odd));
    const __m512i r = _mm512_mask_blend_epi32(nan, rounded, _mm512_or_si512(bits, quiet));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i),
                        _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16)));
  }
  for (; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
}

}  // namespace difflm

#else  // not x86-64: never dispatched to (gemm_paths_available() does not list it)

namespace difflm {
void gemm_block_avx512(const GemmBlock& b) {
  gemm_block_portable(b);
}
void gemm_block_avx512bf16(const GemmBlock& b) {
  gemm_block_portable(b);
}
void round_to_bf16_avx512(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
}
}  // namespace difflm

#endif
