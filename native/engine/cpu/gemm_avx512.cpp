// AVX-512 GEMM kernels. Each micro-kernel computes an MR x NR tile of C as MR x NR dot
// products over K, 16 lanes (32 for the BF16 dot) at a time, with a masked tail, so K need not
// be a multiple of anything. Target attributes (not file-wide flags) keep every inline function
// shared with other files compiled for the baseline CPU.
#include "gemm.h"

#if defined(__x86_64__)
// GCC 12's AVX-512 headers start some intrinsics from _mm512_undefined_*(), which -Wextra
// reports as uninitialised use; the values are fully overwritten.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#define DIFFLM_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma,f16c")))
#define DIFFLM_AVX512BF16 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,fma,f16c")))

namespace difflm {
namespace {

constexpr int MR = 4, NR = 4;

struct LoadF32 {
  DIFFLM_AVX512 static __m512 load(const void* row, int64_t k, __mmask16 m) {
    return _mm512_maskz_loadu_ps(m, static_cast<const float*>(row) + k);
  }
};
struct LoadF16 {
  DIFFLM_AVX512 static __m512 load(const void* row, int64_t k, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(row) + k));
  }
};
struct LoadBF16 {
  DIFFLM_AVX512 static __m512 load(const void* row, int64_t k, __mmask16 m) {
    __m512i wide =
        _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(row) + k));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
  }
};

// One tile with float32 activations: C[i][j] = sum_k A[i][k] * W[j][k].
template <int R, int S, class L>
DIFFLM_AVX512 void tile_f32(const float* A, const char* W, size_t w_stride, int64_t K, float* C,
                            int64_t ldc) {
  __m512 acc[R][S];
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < S; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; k += 16) {
    const __mmask16 m = K - k >= 16 ? static_cast<__mmask16>(0xffff)
                                    : static_cast<__mmask16>((1u << (K - k)) - 1);
    __m512 a[R];
    for (int i = 0; i < R; ++i) a[i] = _mm512_maskz_loadu_ps(m, A + i * K + k);
    for (int j = 0; j < S; ++j) {
      __m512 w = L::load(W + j * w_stride, k, m);
      for (int i = 0; i < R; ++i) acc[i][j] = _mm512_fmadd_ps(a[i], w, acc[i][j]);
    }
  }
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < S; ++j) C[i * ldc + j] = _mm512_reduce_add_ps(acc[i][j]);
}

// One tile with bf16 activations and bf16 weights, pairs summed by VDPBF16PS.
template <int R, int S>
DIFFLM_AVX512BF16 void tile_bf16dot(const uint16_t* A, const char* W, size_t w_stride, int64_t K,
                                    float* C, int64_t ldc) {
  __m512 acc[R][S];
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < S; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; k += 32) {
    const __mmask32 m = K - k >= 32 ? static_cast<__mmask32>(0xffffffffu)
                                    : static_cast<__mmask32>((1u << (K - k)) - 1);
    __m512i a[R];
    for (int i = 0; i < R; ++i) a[i] = _mm512_maskz_loadu_epi16(m, A + i * K + k);
    for (int j = 0; j < S; ++j) {
      __m512i w =
          _mm512_maskz_loadu_epi16(m, reinterpret_cast<const uint16_t*>(W + j * w_stride) + k);
      for (int i = 0; i < R; ++i)
        acc[i][j] = _mm512_dpbf16_ps(acc[i][j], (__m512bh)a[i], (__m512bh)w);
    }
  }
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < S; ++j) C[i * ldc + j] = _mm512_reduce_add_ps(acc[i][j]);
}

using TileF32 = void (*)(const float*, const char*, size_t, int64_t, float*, int64_t);
using TileBf16 = void (*)(const uint16_t*, const char*, size_t, int64_t, float*, int64_t);

template <class L>
TileF32 pick_f32(int r, int s) {
  static const TileF32 table[MR][NR] = {
      {tile_f32<1, 1, L>, tile_f32<1, 2, L>, tile_f32<1, 3, L>, tile_f32<1, 4, L>},
      {tile_f32<2, 1, L>, tile_f32<2, 2, L>, tile_f32<2, 3, L>, tile_f32<2, 4, L>},
      {tile_f32<3, 1, L>, tile_f32<3, 2, L>, tile_f32<3, 3, L>, tile_f32<3, 4, L>},
      {tile_f32<4, 1, L>, tile_f32<4, 2, L>, tile_f32<4, 3, L>, tile_f32<4, 4, L>}};
  return table[r - 1][s - 1];
}

TileBf16 pick_bf16(int r, int s) {
  static const TileBf16 table[MR][NR] = {
      {tile_bf16dot<1, 1>, tile_bf16dot<1, 2>, tile_bf16dot<1, 3>, tile_bf16dot<1, 4>},
      {tile_bf16dot<2, 1>, tile_bf16dot<2, 2>, tile_bf16dot<2, 3>, tile_bf16dot<2, 4>},
      {tile_bf16dot<3, 1>, tile_bf16dot<3, 2>, tile_bf16dot<3, 3>, tile_bf16dot<3, 4>},
      {tile_bf16dot<4, 1>, tile_bf16dot<4, 2>, tile_bf16dot<4, 3>, tile_bf16dot<4, 4>}};
  return table[r - 1][s - 1];
}

// Walks the block in NR-row weight strips (kept hot in L1) and MR-row activation strips.
template <class Act, class Pick>
void walk_block(const GemmBlock& b, const Act* A, Pick pick) {
  const size_t w_stride = static_cast<size_t>(b.K) * dtype_size(b.W->dtype);
  const char* W = static_cast<const char*>(b.W->data);
  for (int64_t n = b.n0; n < b.n1; n += NR) {
    const int s = static_cast<int>(b.n1 - n < NR ? b.n1 - n : NR);
    for (int64_t m = b.m0; m < b.m1; m += MR) {
      const int r = static_cast<int>(b.m1 - m < MR ? b.m1 - m : MR);
      pick(r, s)(A + m * b.K, W + n * w_stride, w_stride, b.K, b.C + m * b.N + n, b.N);
    }
  }
}

}  // namespace

void gemm_block_avx512(const GemmBlock& b) {
  switch (b.W->dtype) {
    case DType::F32: walk_block(b, b.A, pick_f32<LoadF32>); break;
    case DType::F16: walk_block(b, b.A, pick_f32<LoadF16>); break;
    case DType::BF16: walk_block(b, b.A, pick_f32<LoadBF16>); break;
  }
}

void gemm_block_avx512bf16(const GemmBlock& b) { walk_block(b, b.A16, pick_bf16); }

}  // namespace difflm

#else  // not x86-64: never dispatched to (gemm_paths_available() does not list it)

namespace difflm {
void gemm_block_avx512(const GemmBlock& b) { gemm_block_portable(b); }
void gemm_block_avx512bf16(const GemmBlock& b) { gemm_block_portable(b); }
}  // namespace difflm

#endif
