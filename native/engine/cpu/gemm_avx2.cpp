// AVX2 + FMA GEMM kernels (F16C for float16 weights): 8 lanes over K, the K % 8 tail summed
// in scalar code. Compiled with target attributes; see gemm_avx512.cpp.
#include "gemm.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include <cstring>

#define DIFFLM_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace difflm {
namespace {

constexpr int MR = 4, NR = 2;

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

DIFFLM_AVX2 float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_hadd_ps(s, s);
  s = _mm_hadd_ps(s, s);
  return _mm_cvtss_f32(s);
}

template <int R, int S, class L>
DIFFLM_AVX2 void tile(const float* A, const char* W, size_t w_stride, int64_t K, float* C,
                      int64_t ldc) {
  __m256 acc[R][S];
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < S; ++j) acc[i][j] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 a[R];
    for (int i = 0; i < R; ++i) a[i] = _mm256_loadu_ps(A + i * K + k);
    for (int j = 0; j < S; ++j) {
      __m256 w = L::load(W + j * w_stride, k);
      for (int i = 0; i < R; ++i) acc[i][j] = _mm256_fmadd_ps(a[i], w, acc[i][j]);
    }
  }
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < S; ++j) {
      float sum = hsum(acc[i][j]);
      for (int64_t t = k; t < K; ++t) sum += A[i * K + t] * L::scalar(W + j * w_stride, t);
      C[i * ldc + j] = sum;
    }
}

using Tile = void (*)(const float*, const char*, size_t, int64_t, float*, int64_t);

template <class L>
Tile pick(int r, int s) {
  static const Tile table[MR][NR] = {{tile<1, 1, L>, tile<1, 2, L>},
                                     {tile<2, 1, L>, tile<2, 2, L>},
                                     {tile<3, 1, L>, tile<3, 2, L>},
                                     {tile<4, 1, L>, tile<4, 2, L>}};
  return table[r - 1][s - 1];
}

template <class L>
void walk_block(const GemmBlock& b) {
  const size_t w_stride = static_cast<size_t>(b.K) * dtype_size(b.W->dtype);
  const char* W = static_cast<const char*>(b.W->data);
  // A single activation row (left-to-right decoding) streams the weight rows one by one, which
  // reads memory much faster than interleaving them (see gemm_avx512.cpp rows_f32).
  const int64_t nr = b.m1 - b.m0 == 1 ? 1 : NR;
  for (int64_t n = b.n0; n < b.n1; n += nr) {
    const int s = static_cast<int>(b.n1 - n < nr ? b.n1 - n : nr);
    for (int64_t m = b.m0; m < b.m1; m += MR) {
      const int r = static_cast<int>(b.m1 - m < MR ? b.m1 - m : MR);
      pick<L>(r, s)(b.A + m * b.K, W + n * w_stride, w_stride, b.K, b.C + m * b.N + n, b.N);
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
