// AVX2 + FMA GEMM kernels (F16C for float16 weights): each micro-kernel computes an MR x NR tile
// of C as dot products over K, 8 lanes at a time, the K % 8 tail summed in scalar code after the
// lanes. Compiled with target attributes; see gemm_avx512.cpp.
#include "gemm.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include <cstring>

#define DIFFLM_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace difflm {
namespace {

// 3 x 4 tiles: 12 accumulators, 3 activation and 1 weight register fill the 16 AVX2 registers,
// and each k step loads 7 vectors for 12 FMAs (the 4 x 2 tiles this replaces loaded 6 for 8).
constexpr int MR = 3, NR = 4;
// K elements per pass (each pass adds its partial sums into C), as in gemm_avx512.cpp. With
// these tiles, passes of 4096 were 1.00-1.14x as fast as passes of 1024 in one A/B run on a Zen 4
// VM (bench/gemm-ab.js --path avx2); the 4 x 2 tiles before them were slower with any passes.
constexpr int64_t kKChunk = 4096;

struct LoadF32 {
  DIFFLM_AVX2 static __m256 load(const void* row, int64_t k) {
    return _mm256_loadu_ps(static_cast<const float*>(row) + k);
  }
  static float scalar(const void* row, int64_t k) { return static_cast<const float*>(row)[k]; }
};
struct LoadF16 {
  DIFFLM_AVX2 static __m256 load(const void* row, int64_t k) {
    return _mm256_cvtph_ps(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(row) + k)));
  }
  DIFFLM_AVX2 static float scalar(const void* row, int64_t k) {
    return _cvtsh_ss(static_cast<const uint16_t*>(row)[k]);
  }
};
struct LoadBF16 {
  DIFFLM_AVX2 static __m256 load(const void* row, int64_t k) {
    __m256i wide = _mm256_cvtepu16_epi32(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(row) + k)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
  }
  static float scalar(const void* row, int64_t k) {
    uint32_t bits = static_cast<uint32_t>(static_cast<const uint16_t*>(row)[k]) << 16;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
  }
};

// The 8 lanes summed as ((v0 + v4) + (v1 + v5)) + ((v2 + v6) + (v3 + v7)); reduce_2x4 pairs
// them the same way.
DIFFLM_AVX2 inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_hadd_ps(s, s);
  s = _mm_hadd_ps(s, s);
  return _mm_cvtss_f32(s);
}

// One output of a pass: the vector sum, then the K % 8 tail in order, added into C.
template <class L>
DIFFLM_AVX2 inline void finish(float sum, const float* a, const char* w, int64_t k, int64_t K,
                               float* c, bool acc_c) {
  for (; k < K; ++k) sum += a[k] * L::scalar(w, k);
  *c = (acc_c ? *c : 0.f) + sum;
}

// Edge tiles and the GEMV: C[i][j] (+)= sum_k A[i][k] * W[j][k].
template <int R, int S, class L>
DIFFLM_AVX2 void tile(const float* A, int64_t lda, const char* W, size_t w_stride, int64_t K,
                      float* C, int64_t ldc, bool acc_c) {
  __m256 acc[R][S];
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < S; ++j) acc[i][j] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 a[R];
    for (int i = 0; i < R; ++i) a[i] = _mm256_loadu_ps(A + i * lda + k);
    for (int j = 0; j < S; ++j) {
      __m256 w = L::load(W + j * w_stride, k);
      for (int i = 0; i < R; ++i) acc[i][j] = _mm256_fmadd_ps(a[i], w, acc[i][j]);
    }
  }
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < S; ++j)
      finish<L>(hsum(acc[i][j]), A + i * lda, W + j * w_stride, k, K, C + i * ldc + j, acc_c);
}

// Rows a (a0..a3) and b (b0..b3) of accumulators summed into [a sums | b sums], each lane
// paired as hsum pairs it: halves, then adjacent pairs twice.
DIFFLM_AVX2 inline __m256 fold(__m256 x, __m256 y) {  // [x lo + x hi | y lo + y hi]
  return _mm256_add_ps(_mm256_permute2f128_ps(x, y, 0x20), _mm256_permute2f128_ps(x, y, 0x31));
}
DIFFLM_AVX2 inline __m256 reduce_2x4(__m256 a0, __m256 a1, __m256 a2, __m256 a3, __m256 b0,
                                     __m256 b1, __m256 b2, __m256 b3) {
  const __m256 u0 = _mm256_hadd_ps(fold(a0, b0), fold(a1, b1));
  const __m256 u1 = _mm256_hadd_ps(fold(a2, b2), fold(a3, b3));
  return _mm256_hadd_ps(u0, u1);
}

// Four sums (one row of the tile) added into C, with the row's K % 8 tail when there is one.
template <class L>
DIFFLM_AVX2 inline void store_row(__m128 sums, const float* a, const char* W, size_t w_stride,
                                  int64_t k, int64_t K, float* c, bool acc_c) {
  if (k == K) {
    _mm_storeu_ps(c, _mm_add_ps(acc_c ? _mm_loadu_ps(c) : _mm_setzero_ps(), sums));
    return;
  }
  float s[4];
  _mm_storeu_ps(s, sums);
  for (int j = 0; j < 4; ++j) finish<L>(s[j], a, W + j * w_stride, k, K, c + j, acc_c);
}

// The full 3 x 4 tile with named accumulators (GCC keeps arrays of vectors in memory in a
// kernel this register-tight).
// clang-format off
#define DIFFLM_ACC12(X) \
  X(0, 0) X(0, 1) X(0, 2) X(0, 3) X(1, 0) X(1, 1) X(1, 2) X(1, 3) X(2, 0) X(2, 1) X(2, 2) X(2, 3)
// clang-format on
template <class L>
DIFFLM_AVX2 void tile_3x4(const float* A, int64_t lda, const char* W, size_t w_stride, int64_t K,
                          float* C, int64_t ldc, bool acc_c) {
#define DIFFLM_ZERO(i, j) __m256 c##i##j = _mm256_setzero_ps();
  DIFFLM_ACC12(DIFFLM_ZERO)
#undef DIFFLM_ZERO
  const float *a0 = A, *a1 = A + lda, *a2 = A + 2 * lda;
  const char *w0 = W, *w1 = W + w_stride, *w2 = W + 2 * w_stride, *w3 = W + 3 * w_stride;
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    const __m256 x0 = _mm256_loadu_ps(a0 + k), x1 = _mm256_loadu_ps(a1 + k);
    const __m256 x2 = _mm256_loadu_ps(a2 + k);
    __m256 y = L::load(w0, k);
    c00 = _mm256_fmadd_ps(x0, y, c00), c10 = _mm256_fmadd_ps(x1, y, c10);
    c20 = _mm256_fmadd_ps(x2, y, c20);
    y = L::load(w1, k);
    c01 = _mm256_fmadd_ps(x0, y, c01), c11 = _mm256_fmadd_ps(x1, y, c11);
    c21 = _mm256_fmadd_ps(x2, y, c21);
    y = L::load(w2, k);
    c02 = _mm256_fmadd_ps(x0, y, c02), c12 = _mm256_fmadd_ps(x1, y, c12);
    c22 = _mm256_fmadd_ps(x2, y, c22);
    y = L::load(w3, k);
    c03 = _mm256_fmadd_ps(x0, y, c03), c13 = _mm256_fmadd_ps(x1, y, c13);
    c23 = _mm256_fmadd_ps(x2, y, c23);
  }
  const __m256 z = _mm256_setzero_ps();
  const __m256 r01 = reduce_2x4(c00, c01, c02, c03, c10, c11, c12, c13);
  const __m256 r2 = reduce_2x4(c20, c21, c22, c23, z, z, z, z);
  store_row<L>(_mm256_castps256_ps128(r01), a0, W, w_stride, k, K, C, acc_c);
  store_row<L>(_mm256_extractf128_ps(r01, 1), a1, W, w_stride, k, K, C + ldc, acc_c);
  store_row<L>(_mm256_castps256_ps128(r2), a2, W, w_stride, k, K, C + 2 * ldc, acc_c);
}
#undef DIFFLM_ACC12

using Tile = void (*)(const float*, int64_t, const char*, size_t, int64_t, float*, int64_t, bool);

template <class L>
Tile pick(int r, int s) {
  static const Tile table[MR][NR] = {{tile<1, 1, L>, tile<1, 2, L>, tile<1, 3, L>, tile<1, 4, L>},
                                     {tile<2, 1, L>, tile<2, 2, L>, tile<2, 3, L>, tile<2, 4, L>},
                                     {tile<3, 1, L>, tile<3, 2, L>, tile<3, 3, L>, tile_3x4<L>}};
  return table[r - 1][s - 1];
}

template <class L>
void walk_block(const GemmBlock& b) {
  const size_t esize = dtype_size(b.W->dtype);
  const size_t w_stride = static_cast<size_t>(b.K) * esize;
  const char* W = static_cast<const char*>(b.W->data);
  if (b.m1 - b.m0 == 1) {
    // A single activation row (left-to-right decoding): NR weight rows at a time, row by row
    // within a K pass. One row at a time (as gemm_avx512.cpp's rows_f32 does) waits on its one
    // FMA chain, 8 elements per FMA latency, below what memory delivers: 4 rows read 1.10-1.37x
    // as many GB/s in one A/B run on a Zen 4 VM. The passes are the tiles' passes and each
    // output keeps its own chain, so results do not depend on the batch.
    const float* a = b.A + b.m0 * b.K;
    for (int64_t n = b.n0; n < b.n1; n += NR) {
      const int s = static_cast<int>(b.n1 - n < NR ? b.n1 - n : NR);
      for (int64_t k0 = 0; k0 < b.K; k0 += kKChunk)
        pick<L>(1, s)(a + k0, b.K, W + n * w_stride + k0 * esize, w_stride,
                      b.K - k0 < kKChunk ? b.K - k0 : kKChunk, b.C + b.m0 * b.N + n, b.N, k0 > 0);
    }
    return;
  }
  for (int64_t k0 = 0; k0 < b.K; k0 += kKChunk) {
    const int64_t klen = b.K - k0 < kKChunk ? b.K - k0 : kKChunk;
    for (int64_t n = b.n0; n < b.n1; n += NR) {
      const int s = static_cast<int>(b.n1 - n < NR ? b.n1 - n : NR);
      for (int64_t m = b.m0; m < b.m1; m += MR) {
        const int r = static_cast<int>(b.m1 - m < MR ? b.m1 - m : MR);
        pick<L>(r, s)(b.A + m * b.K + k0, b.K, W + n * w_stride + k0 * esize, w_stride, klen,
                      b.C + m * b.N + n, b.N, k0 > 0);
      }
    }
  }
}

}  // namespace

void gemm_block_avx2(const GemmBlock& b) {
  switch (b.W->dtype) {
    case DType::F32: walk_block<LoadF32>(b); break;
    case DType::F16: walk_block<LoadF16>(b); break;
    case DType::BF16: walk_block<LoadBF16>(b); break;
  }
}

}  // namespace difflm

#else

namespace difflm {
void gemm_block_avx2(const GemmBlock& b) {
  gemm_block_portable(b);
}
}  // namespace difflm

#endif
