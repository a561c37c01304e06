// The tensor-core GEMM kernel of gemm.cu as a template over its tiling, so that
// bench/cuda/gemm.cu can time several tilings with the same code (STYLE.md: trial versions live
// in bench/, the winner ships). Included by gemm.cu and the bench only.
//
// C[M x N] = A16[M x K] . W[N x K]^T, A16 and W 16-bit (bf16 or f16 bits), f32 accumulation, with
// mma.sync.m16n8k16 fed by ldmatrix from padded shared tiles. Block tile BM x BN x BK, warps as
// WARPS_M x WARPS_N with warp tile (BM/WARPS_M) x (BN/WARPS_N), STAGES shared buffers. Blocks are
// rastered in groups of kGroupM row tiles so that concurrently running blocks share W tiles and
// A rows in L2. Within a k tile the fragments of step s+1 are loaded before the mma of step s.
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>

#include "common.cuh"

namespace difflm {
namespace cuda {
namespace tc {

// ---------------------------------------------------------------------------------------------
// PTX wrappers. Guarded so the file compiles for any -arch; the host never launches a kernel on a
// device that lacks the instruction (see gemm() below), and a guard that fires traps loudly.
// ---------------------------------------------------------------------------------------------

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte global->shared copy; src_bytes < 16 zero-fills the rest (0: pure zero fill, src unread).
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, int src_bytes) {
#if defined(DIFFLM_SIMT_EMU)
  ::difflm_emu::cp_async16(smem, gmem, src_bytes);
#elif !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(smem)), "l"(gmem),
               "r"(src_bytes)
               : "memory");
#else
  __trap();
#endif
}
__device__ __forceinline__ void cp_async_commit() {
#if defined(DIFFLM_SIMT_EMU)
  ::difflm_emu::cp_async_commit();
#elif !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
#if defined(DIFFLM_SIMT_EMU)
  ::difflm_emu::cp_async_wait(N);
#elif !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

// Four 8x8 b16 matrices; lane i gives the address of row (i % 8) of matrix (i / 8), and receives
// in r[j] the elements (row lane/4, cols 2*(lane%4) .. +1) of matrix j (PTX ISA, "Warp-level
// matrix load instruction: ldmatrix").
__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void* smem) {
#if defined(DIFFLM_SIMT_EMU)
  ::difflm_emu::ldmatrix_x4(r, smem);
#elif !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 750
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(smem))
               : "memory");
#else
  __trap();
#endif
}

// d += a . b for one m16n8k16 tile, f32 accumulators (PTX ISA, "Matrix Fragments for
// mma.m16n8k16 with floating point type"; g = lane / 4, t = lane % 4):
//   A 16x16 row-major, a[0]: (row g, cols 2t,2t+1), a[1]: (g+8, 2t..), a[2]: (g, 2t+8..),
//     a[3]: (g+8, 2t+8..)
//   B 16x8 (k x n), b[0]: (k 2t,2t+1, n g), b[1]: (k 2t+8.., n g)
//   C 16x8, d[0],d[1]: (row g, cols 2t, 2t+1), d[2],d[3]: (row g+8, cols 2t, 2t+1)
template <bool kBf16>
__device__ __forceinline__ void mma16816(float d[4], const uint32_t a[4], const uint32_t b[2]) {
#if defined(DIFFLM_SIMT_EMU)
  ::difflm_emu::mma16816(d, a, b, kBf16);
  return;
#endif
  if (kBf16) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    __trap();
#endif
  } else {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#elif __CUDA_ARCH__ >= 750
    // Turing has f16 m16n8k8 only. Its fragments (same PTX section, "m16n8k8"): A a[0]: (row g,
    // k 2t..), a[1]: (row g+8, k 2t..); B b[0]: (k 2t.., n g); C as above. So the k16 tile is
    // two k8 steps: (a[0], a[1], b[0]) over k 0-7, then (a[2], a[3], b[1]) over k 8-15.
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5}, {%6}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(b[0]));
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5}, {%6}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[2]), "r"(a[3]), "r"(b[1]));
#else
    __trap();
#endif
  }
}

// ---------------------------------------------------------------------------------------------
// Tiling
// ---------------------------------------------------------------------------------------------

template <int BM_, int BN_, int BK_, int WARPS_M_, int WARPS_N_, int STAGES_, int MIN_BLOCKS_>
struct Tiling {
  static constexpr int BM = BM_, BN = BN_, BK = BK_, WARPS_M = WARPS_M_, WARPS_N = WARPS_N_;
  static constexpr int STAGES = STAGES_, MIN_BLOCKS = MIN_BLOCKS_;
  static constexpr int kThreads = WARPS_M * WARPS_N * 32;
  static constexpr int WTM = BM / WARPS_M, WTN = BN / WARPS_N;  // warp tile
  static constexpr int MI = WTM / 16, NI = WTN / 8;             // mma tiles per warp
  // Row stride in 16-bit elements: BK + 8. Keeps 16-byte chunks aligned (cp.async, ldmatrix) and
  // spreads the 8 row addresses of an ldmatrix matrix over distinct 4-bank groups (BK 32: 80 B =
  // 20 words, rows at banks 0,20,8,28,16,4,24,12; BK 64: 144 B = 36 words, rows at 0,4,..,28).
  static constexpr int LDS = BK + 8;
  static constexpr int A_ELEMS = BM * LDS, B_ELEMS = BN * LDS;
  static constexpr size_t SMEM = static_cast<size_t>(STAGES) * (A_ELEMS + B_ELEMS) * 2;
  static_assert(WTM % 16 == 0 && WTN % 16 == 0, "warp tile: whole m16 tiles, pairs of n8 tiles");
  static_assert(BK % 16 == 0 && (BK / 8) * BM % kThreads == 0 && (BK / 8) * BN % kThreads == 0,
                "the loaders give every thread the same number of 8-element chunks");
  static_assert(STAGES >= 2, "at least double buffering");
};

constexpr int kGroupM = 16;  // row tiles per raster group

// Loads the ROWS x BK tile of `src` (rows r0.., cols k0.., leading dimension K, `rows` valid
// rows) into shared `dst` in chunks of 8 elements. Past the edges: zeros.
template <class T, int ROWS, bool kAsync>
__device__ __forceinline__ void load_tile(uint16_t* dst, const uint16_t* __restrict__ src, int rows,
                                          int K, int r0, int k0) {
  constexpr int kChunksPerRow = T::BK / 8;
  constexpr int kIters = ROWS * kChunksPerRow / T::kThreads;
#pragma unroll
  for (int i = 0; i < kIters; ++i) {
    const int c = threadIdx.x + i * T::kThreads;
    const int r = c / kChunksPerRow, kc = (c % kChunksPerRow) * 8;
    const int gr = r0 + r, gk = k0 + kc;
    uint16_t* d = dst + r * T::LDS + kc;
    const uint16_t* s = src + static_cast<int64_t>(gr) * K + gk;
    if (kAsync) {
      // K % 8 == 0 here, so a chunk is either wholly inside K or wholly outside.
      const bool ok = gr < rows && gk < K;
      cp_async16(d, ok ? s : src, ok ? 16 : 0);
    } else {
      uint32_t w[4] = {0, 0, 0, 0};
      if (gr < rows) {
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          const uint32_t v = gk + e < K ? static_cast<uint32_t>(s[e]) : 0u;
          w[e >> 1] |= v << ((e & 1) * 16);
        }
      }
      *reinterpret_cast<uint4*>(d) = make_uint4(w[0], w[1], w[2], w[3]);
    }
  }
}

// Fragments of one k16 step for the warp's MI x NI mma tiles.
//   A: per m16 tile one ldmatrix.x4 of matrices (rows 0-7, k 0-7), (rows 8-15, k 0-7),
//      (rows 0-7, k 8-15), (rows 8-15, k 8-15) = a[0..3]; lane gives row lane & 15, k (lane>>4)*8.
//   B: per pair of n8 tiles one ldmatrix.x4 of (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7),
//      (n 8-15, k 8-15). W is stored [n][k], so a matrix row is one n with 8 consecutive k, which
//      is the B fragment (b[0]: k 2t..2t+1 of column g).
template <class T>
__device__ __forceinline__ void load_frags(uint32_t (&af)[T::MI][4], uint32_t (&bf)[T::NI][2],
                                           const uint16_t* a_s, const uint16_t* b_s, int wm, int wn,
                                           int kk, int lane) {
#pragma unroll
  for (int mi = 0; mi < T::MI; ++mi)
    ldmatrix_x4(af[mi], a_s + (wm + mi * 16 + (lane & 15)) * T::LDS + kk + (lane >> 4) * 8);
#pragma unroll
  for (int nj = 0; nj < T::NI / 2; ++nj) {
    const int n = wn + nj * 16 + (lane & 7) + ((lane >> 4) << 3);
    uint32_t r[4];
    ldmatrix_x4(r, b_s + n * T::LDS + kk + ((lane >> 3) & 1) * 8);
    bf[2 * nj][0] = r[0];
    bf[2 * nj][1] = r[1];
    bf[2 * nj + 1][0] = r[2];
    bf[2 * nj + 1][1] = r[3];
  }
}

template <class T, bool kBf16, bool kAsync>
__global__ void __launch_bounds__(T::kThreads, T::MIN_BLOCKS)
    gemm16_kernel(const uint16_t* __restrict__ A16, const uint16_t* __restrict__ W,
                  float* __restrict__ C, int M, int N, int K) {
  DIFFLM_DYNAMIC_SMEM(uint16_t, smem, 16);
  uint16_t* As = smem;                           // [STAGES][BM][LDS]
  uint16_t* Bs = smem + T::STAGES * T::A_ELEMS;  // [STAGES][BN][LDS]

  // Grouped raster: kGroupM row tiles side by side, then the next column tile.
  const int tiles_m = (M + T::BM - 1) / T::BM, tiles_n = (N + T::BN - 1) / T::BN;
  const int per_group = kGroupM * tiles_n;
  const int pid = blockIdx.x, first_m = (pid / per_group) * kGroupM;
  const int group_m = min(tiles_m - first_m, kGroupM);
  const int tm = first_m + (pid % per_group) % group_m, tn = (pid % per_group) / group_m;
  const int m0 = tm * T::BM, n0 = tn * T::BN;

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int wm = (warp / T::WARPS_N) * T::WTM, wn = (warp % T::WARPS_N) * T::WTN;
  const int nk = (K + T::BK - 1) / T::BK;

  float acc[T::MI][T::NI][4];
#pragma unroll
  for (int i = 0; i < T::MI; ++i)
#pragma unroll
    for (int j = 0; j < T::NI; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;

        // Prologue: tiles 0 .. STAGES-2, one commit group per tile (empty ones included) so that
        // "group t complete" always means "tile t landed".
#pragma unroll
  for (int s = 0; s < T::STAGES - 1; ++s) {
    if (s < nk) {
      load_tile<T, T::BM, kAsync>(As + s * T::A_ELEMS, A16, M, K, m0, s * T::BK);
      load_tile<T, T::BN, kAsync>(Bs + s * T::B_ELEMS, W, N, K, n0, s * T::BK);
    }
    cp_async_commit();
  }

  for (int kt = 0; kt < nk; ++kt) {
    // kt + STAGES - 1 groups committed; at most STAGES - 2 pending means tile kt landed (for this
    // thread's copies). The barrier publishes it to all threads and also guarantees that every
    // warp finished tile kt-1, whose buffer is refilled just below.
    cp_async_wait<T::STAGES - 2>();
    __syncthreads();
    const int pf = kt + T::STAGES - 1;
    if (pf < nk) {
      const int b = pf % T::STAGES;
      load_tile<T, T::BM, kAsync>(As + b * T::A_ELEMS, A16, M, K, m0, pf * T::BK);
      load_tile<T, T::BN, kAsync>(Bs + b * T::B_ELEMS, W, N, K, n0, pf * T::BK);
    }
    cp_async_commit();

    const uint16_t* a_s = As + (kt % T::STAGES) * T::A_ELEMS;
    const uint16_t* b_s = Bs + (kt % T::STAGES) * T::B_ELEMS;
    uint32_t af[2][T::MI][4], bf[2][T::NI][2];
    load_frags<T>(af[0], bf[0], a_s, b_s, wm, wn, 0, lane);
#pragma unroll
    for (int ks = 0; ks < T::BK / 16; ++ks) {
      if (ks + 1 < T::BK / 16)
        load_frags<T>(af[(ks + 1) & 1], bf[(ks + 1) & 1], a_s, b_s, wm, wn, (ks + 1) * 16, lane);
#pragma unroll
      for (int mi = 0; mi < T::MI; ++mi)
#pragma unroll
        for (int ni = 0; ni < T::NI; ++ni)
          mma16816<kBf16>(acc[mi][ni], af[ks & 1][mi], bf[ks & 1][ni]);
    }
  }
  cp_async_wait<0>();  // leave no copy in flight at exit

  // Epilogue: scalar bounded stores (C's row stride N may be odd). C fragment: d[0], d[1] at
  // (row g, cols 2t, 2t+1), d[2], d[3] at (row g+8, same cols).
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int mi = 0; mi < T::MI; ++mi)
#pragma unroll
    for (int ni = 0; ni < T::NI; ++ni) {
      const int col = n0 + wn + ni * 8 + 2 * t;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int row = m0 + wm + mi * 16 + g + h * 8;
        if (row >= M) continue;
        float* c = C + static_cast<int64_t>(row) * N;
        if (col < N) c[col] = acc[mi][ni][2 * h];
        if (col + 1 < N) c[col + 1] = acc[mi][ni][2 * h + 1];
      }
    }
}

// Launches one tiling on A16 / W (the caller picked kAsync: sm_80+, K % 8 == 0, 16-byte aligned
// A16 and W). The dynamic shared memory limit is raised once per device and instantiation.
template <class T, bool kBf16, bool kAsync>
void launch(const uint16_t* A16, const uint16_t* W, float* C, int M, int N, int K,
            cudaStream_t st) {
  auto kernel = gemm16_kernel<T, kBf16, kAsync>;
  if (T::SMEM > 48 * 1024) {
    static std::atomic<uint64_t> done{0};
    allow_dynamic_smem(kernel, static_cast<int>(T::SMEM), done);
  }
  const int64_t blocks = static_cast<int64_t>(ceil_div(M, T::BM)) * ceil_div(N, T::BN);
  CUDA_REQUIRE(blocks <= 0x7fffffff, "gemm: grid too large");
  DIFFLM_LAUNCH(kernel, static_cast<unsigned>(blocks), T::kThreads, T::SMEM, st, A16, W, C, M, N,
                K);
  CUDA_CHECK_LAUNCH("gemm16_kernel");
}

}  // namespace tc
}  // namespace cuda
}  // namespace difflm
