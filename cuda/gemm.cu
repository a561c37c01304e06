// C[M x N] = A[M x K] . W[N x K]^T (kernels.h: difflm::cuda::gemm). CPU twin: gemm() in
// native/engine/cpu/gemm.h.
//
// Build check: nvcc -std=c++17 -arch=sm_90 -I native/engine -I cuda -c cuda/gemm.cu
//
// Kernels:
//   round_a_kernel   A (f32) -> scratch (bf16 or f16 bits), round to nearest even exactly as the
//                    host's f32_to_bf16 / f32_to_f16, so the GPU multiplies the values the CPU's
//                    bf16 path sees.
//   gemm16_kernel    tensor cores, mma.sync.m16n8k16 (f32 accumulate) fed by ldmatrix from
//                    padded shared tiles. Block tile 128x128x32, 256 threads = 8 warps as 2 (M) x
//                    4 (N), warp tile 64x32 = 4 x 4 mma tiles. Two loaders:
//                      kAsync (sm_80+, K % 8 == 0, 16-byte aligned A16 and W): cp.async 16-byte
//                        copies with zero-fill past M/N/K, 4-stage pipeline (80 KiB dynamic smem);
//                      generic (any K, 2-byte alignment, also sm_75 F16): scalar loads with
//                        per-element bounds, 2 stages (40 KiB).
//                    m16n8k16 needs sm_80 for both types; on sm_75 (F16 only) each k16 step is
//                    two m16n8k8 instructions.
//   gemm_simt_kernel float32 FMA, block tile 64x64x16, 256 threads, 4x4 outputs per thread: F32
//                    weights, and BF16 weights on devices without bf16 mma (< sm_80; it reads the
//                    rounded A from scratch so results match the tensor-core path).
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>

#include "common.cuh"
#include "kernels.h"

namespace difflm {
namespace cuda {
namespace {

// ---------------------------------------------------------------------------------------------
// A -> 16-bit scratch
// ---------------------------------------------------------------------------------------------

template <bool kBf16>
__device__ __forceinline__ uint16_t round16(float f) {
  return kBf16 ? f32_to_bf16_bits(f) : f32_to_f16_bits(f);
}

// n elements; 4 per thread when `vec` (n % 4 == 0, A 16-byte and dst 8-byte aligned).
template <bool kBf16, bool kVec>
__global__ void round_a_kernel(const float* __restrict__ A, uint16_t* __restrict__ dst, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (kVec) {
    for (; i < n / 4; i += stride) {
      const float4 v = reinterpret_cast<const float4*>(A)[i];
      uint2 o;
      o.x = static_cast<uint32_t>(round16<kBf16>(v.x)) |
            (static_cast<uint32_t>(round16<kBf16>(v.y)) << 16);
      o.y = static_cast<uint32_t>(round16<kBf16>(v.z)) |
            (static_cast<uint32_t>(round16<kBf16>(v.w)) << 16);
      reinterpret_cast<uint2*>(dst)[i] = o;
    }
  } else {
    for (; i < n; i += stride) dst[i] = round16<kBf16>(A[i]);
  }
}

// ---------------------------------------------------------------------------------------------
// PTX wrappers. Guarded so the file compiles for any -arch; the host never launches a kernel on a
// device that lacks the instruction (see gemm() below), and a guard that fires traps loudly.
// ---------------------------------------------------------------------------------------------

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte global->shared copy; src_bytes < 16 zero-fills the rest (0: pure zero fill, src unread).
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, int src_bytes) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(smem)), "l"(gmem),
               "r"(src_bytes)
               : "memory");
#else
  __trap();
#endif
}
__device__ __forceinline__ void cp_async_commit() {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

// Four 8x8 b16 matrices; lane i gives the address of row (i % 8) of matrix (i / 8), and receives
// in r[j] the elements (row lane/4, cols 2*(lane%4) .. +1) of matrix j (PTX ISA, "Warp-level
// matrix load instruction: ldmatrix").
__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void* smem) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 750
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
// Tensor-core kernel
// ---------------------------------------------------------------------------------------------

constexpr int kBM = 128, kBN = 128, kBK = 32;
constexpr int kThreads = 256;
// Row stride of the shared tiles in 16-bit elements: 32 + 8 = 80 bytes. Keeps every 16-byte
// chunk aligned (cp.async, ldmatrix) and puts the 8 row addresses of one ldmatrix matrix on
// distinct 4-bank groups (80 B = 20 words: rows hit banks 0,20,8,28,16,4,24,12), so no conflicts.
constexpr int kLds = kBK + 8;
constexpr int kTileElems = kBM * kLds;  // one A or B tile (kBM == kBN)
constexpr int kStagesAsync = 4, kStagesSync = 2;

constexpr size_t smem_bytes(int stages) {
  return static_cast<size_t>(stages) * 2 * kTileElems * sizeof(uint16_t);
}

// Loads the [128 x 32] tile of `src` (rows r0.., cols k0.., leading dimension K, `rows` valid
// rows) into shared `dst`: 512 chunks of 8 elements, 2 per thread. Past the edges: zeros.
template <bool kAsync>
__device__ __forceinline__ void load_tile(uint16_t* dst, const uint16_t* __restrict__ src, int rows,
                                          int K, int r0, int k0) {
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int c = threadIdx.x + i * kThreads;
    const int r = c >> 2, kc = (c & 3) * 8;
    const int gr = r0 + r, gk = k0 + kc;
    uint16_t* d = dst + r * kLds + kc;
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

// One block computes C[m0:m0+128, n0:n0+128]; A16 [M x K] and W [N x K] are 16-bit bits.
template <bool kBf16, bool kAsync, int kStages>
__global__ void __launch_bounds__(kThreads, 2)
    gemm16_kernel(const uint16_t* __restrict__ A16, const uint16_t* __restrict__ W,
                  float* __restrict__ C, int M, int N, int K) {
  extern __shared__ __align__(16) uint16_t smem[];
  uint16_t* As = smem;                         // [kStages][kBM][kLds]
  uint16_t* Bs = smem + kStages * kTileElems;  // [kStages][kBN][kLds]

  const int m0 = blockIdx.y * kBM, n0 = blockIdx.x * kBN;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int wm = (warp >> 2) * 64, wn = (warp & 3) * 32;  // warp tile origin inside the block
  const int nk = (K + kBK - 1) / kBK;

  float acc[4][4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;

        // Prologue: tiles 0 .. kStages-2. One commit group per tile, empty ones included, so that
        // "group t complete" always means "tile t landed" (uniform counting for
        // cp.async.wait_group).
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < nk) {
      load_tile<kAsync>(As + s * kTileElems, A16, M, K, m0, s * kBK);
      load_tile<kAsync>(Bs + s * kTileElems, W, N, K, n0, s * kBK);
    }
    cp_async_commit();
  }

  for (int kt = 0; kt < nk; ++kt) {
    // kt + kStages - 1 groups were committed so far; allowing kStages - 2 pending means tiles
    // 0..kt have landed for this thread's copies; the barrier makes them visible to all, and also
    // guarantees every warp finished computing tile kt-1, whose buffer we refill just below.
    cp_async_wait<kStages - 2>();
    __syncthreads();
    const int pf = kt + kStages - 1;
    if (pf < nk) {
      const int b = pf % kStages;
      load_tile<kAsync>(As + b * kTileElems, A16, M, K, m0, pf * kBK);
      load_tile<kAsync>(Bs + b * kTileElems, W, N, K, n0, pf * kBK);
    }
    cp_async_commit();

    const uint16_t* a_s = As + (kt % kStages) * kTileElems;
    const uint16_t* b_s = Bs + (kt % kStages) * kTileElems;
#pragma unroll
    for (int kk = 0; kk < kBK; kk += 16) {
      // B fragments of the warp's 4 n8 tiles, two per ldmatrix.x4: matrices (n 0-7, k 0-7),
      // (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15) of a 16-wide n slab. W is stored
      // [n][k], so a matrix row is one n with 8 consecutive k, which is B's fragment layout.
      uint32_t bf[4][2];
#pragma unroll
      for (int nj = 0; nj < 2; ++nj) {
        const int n = wn + nj * 16 + (lane & 7) + ((lane >> 4) << 3);
        const int k = kk + ((lane >> 3) & 1) * 8;
        uint32_t r[4];
        ldmatrix_x4(r, b_s + n * kLds + k);
        bf[2 * nj][0] = r[0];
        bf[2 * nj][1] = r[1];
        bf[2 * nj + 1][0] = r[2];
        bf[2 * nj + 1][1] = r[3];
      }
#pragma unroll
      for (int mi = 0; mi < 4; ++mi) {
        // A fragment: matrices (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15),
        // (rows 8-15, k 8-15) = a[0..3]; lane gives row (lane & 15), k offset (lane >> 4) * 8.
        uint32_t af[4];
        ldmatrix_x4(af, a_s + (wm + mi * 16 + (lane & 15)) * kLds + kk + (lane >> 4) * 8);
#pragma unroll
        for (int ni = 0; ni < 4; ++ni) mma16816<kBf16>(acc[mi][ni], af, bf[ni]);
      }
    }
  }
  cp_async_wait<0>();  // nothing useful is pending, but leave no copy in flight at exit

  // Epilogue: scalar bounded stores (C's row stride N may be odd).
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int mi = 0; mi < 4; ++mi) {
#pragma unroll
    for (int ni = 0; ni < 4; ++ni) {
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
}

// ---------------------------------------------------------------------------------------------
// SIMT float32 kernel
// ---------------------------------------------------------------------------------------------

constexpr int kSBM = 64, kSBN = 64, kSBK = 16;

template <DType T>
__device__ __forceinline__ float ld_f32(const void* p, int64_t i) {
  return load_as_f32_dev(p, T, static_cast<size_t>(i));
}

// Thread (tx, ty) = (tid % 16, tid / 16) owns rows ty + 16 i and cols tx + 16 j, i, j < 4, so a
// warp reads 2 A values (broadcast) and 16 consecutive B values per k. Tiles are stored k-major
// with one pad column (the transposing store then has at most 2-way bank conflicts).
template <DType TA, DType TW>
__global__ void __launch_bounds__(256)
    gemm_simt_kernel(const void* __restrict__ A, const void* __restrict__ W, float* __restrict__ C,
                     int M, int N, int K) {
  __shared__ float As[kSBK][kSBM + 1];
  __shared__ float Bs[kSBK][kSBN + 1];
  const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
  const int m0 = blockIdx.y * kSBM, n0 = blockIdx.x * kSBN;
  float acc[4][4] = {};

  for (int k0 = 0; k0 < K; k0 += kSBK) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int e = tid + i * 256, r = e / kSBK, kk = e % kSBK;
      const int gk = k0 + kk;
      const int ga = m0 + r, gw = n0 + r;
      As[kk][r] = (ga < M && gk < K) ? ld_f32<TA>(A, static_cast<int64_t>(ga) * K + gk) : 0.f;
      Bs[kk][r] = (gw < N && gk < K) ? ld_f32<TW>(W, static_cast<int64_t>(gw) * K + gk) : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kSBK; ++kk) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = As[kk][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = Bs[kk][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int row = m0 + ty + 16 * i;
    if (row >= M) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int col = n0 + tx + 16 * j;
      if (col < N) C[static_cast<int64_t>(row) * N + col] = acc[i][j];
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Launchers
// ---------------------------------------------------------------------------------------------

template <bool kBf16>
void launch_round(const float* A, uint16_t* dst, int64_t n, cudaStream_t st) {
  const int threads = 256;
  const bool vec = n % 4 == 0 && is_aligned(A, 16) && is_aligned(dst, 8);
  const int64_t work = vec ? n / 4 : n;
  const int64_t blocks = std::min<int64_t>(ceil_div<int64_t>(work, threads), 65536);
  if (vec) {
    round_a_kernel<kBf16, true><<<static_cast<unsigned>(blocks), threads, 0, st>>>(A, dst, n);
  } else {
    round_a_kernel<kBf16, false><<<static_cast<unsigned>(blocks), threads, 0, st>>>(A, dst, n);
  }
  CUDA_CHECK_LAUNCH("round_a_kernel");
}

template <DType TA, DType TW>
void launch_simt(const void* A, const void* W, float* C, int M, int N, int K, cudaStream_t st) {
  const dim3 grid(ceil_div(N, kSBN), ceil_div(M, kSBM));
  gemm_simt_kernel<TA, TW><<<grid, 256, 0, st>>>(A, W, C, M, N, K);
  CUDA_CHECK_LAUNCH("gemm_simt_kernel");
}

template <bool kBf16, bool kAsync>
void launch_tc(const uint16_t* A16, const uint16_t* W, float* C, int M, int N, int K,
               cudaStream_t st) {
  constexpr int stages = kAsync ? kStagesAsync : kStagesSync;
  constexpr size_t smem = smem_bytes(stages);
  auto kernel = gemm16_kernel<kBf16, kAsync, stages>;
  if (smem > 48 * 1024) {
    // Opt in to more than 48 KiB of dynamic shared memory; once per device and instantiation.
    static std::atomic<uint64_t> done{0};
    int dev = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    const uint64_t bit = 1ull << (dev & 63);
    if (!(done.load(std::memory_order_relaxed) & bit)) {
      CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      static_cast<int>(smem)));
      done.fetch_or(bit, std::memory_order_relaxed);
    }
  }
  const dim3 grid(ceil_div(N, kBN), ceil_div(M, kBM));
  kernel<<<grid, kThreads, smem, st>>>(A16, W, C, M, N, K);
  CUDA_CHECK_LAUNCH("gemm16_kernel");
}

template <bool kBf16>
void gemm16(const float* A, int M, int K, const uint16_t* W, int N, float* C, uint16_t* scratch,
            cudaStream_t st) {
  launch_round<kBf16>(A, scratch, static_cast<int64_t>(M) * K, st);
  const int cc = device_cc();
  if (cc < (kBf16 ? 80 : 75)) {
    // No mma for this type on this device: float32 FMA on the same rounded inputs.
    launch_simt<kBf16 ? DType::BF16 : DType::F16, kBf16 ? DType::BF16 : DType::F16>(scratch, W, C,
                                                                                    M, N, K, st);
  } else if (cc >= 80 && K % 8 == 0 && is_aligned(scratch, 16) && is_aligned(W, 16)) {
    launch_tc<kBf16, true>(scratch, W, C, M, N, K, st);
  } else {
    launch_tc<kBf16, false>(scratch, W, C, M, N, K, st);
  }
}

}  // namespace

void gemm(const float* A, int64_t M, int64_t K, const void* W, DType wt, int64_t N, float* C,
          uint16_t* scratch, Stream s) {
  CUDA_REQUIRE(M >= 0 && N >= 0 && K >= 0, "gemm: negative size");
  CUDA_REQUIRE(M < (1ll << 31) && N < (1ll << 31) && K < (1ll << 31), "gemm: size over 2^31");
  if (M == 0 || N == 0) return;
  const cudaStream_t st = to_stream(s);
  if (K == 0) {  // empty sum
    CUDA_CHECK(cudaMemsetAsync(C, 0, static_cast<size_t>(M * N) * sizeof(float), st));
    return;
  }
  CUDA_REQUIRE(A != nullptr && W != nullptr && C != nullptr, "gemm: null pointer");
  // Grid y counts row tiles (limit 65535): 64-row tiles on the SIMT path.
  CUDA_REQUIRE(ceil_div<int64_t>(M, kSBM) <= 65535, "gemm: M too large for one launch");
  const int m = static_cast<int>(M), n = static_cast<int>(N), k = static_cast<int>(K);
  const auto* w16 = static_cast<const uint16_t*>(W);
  switch (wt) {
    case DType::F32: launch_simt<DType::F32, DType::F32>(A, W, C, m, n, k, st); return;
    case DType::BF16:
      CUDA_REQUIRE(scratch != nullptr, "gemm: BF16 weights need scratch of M*K");
      gemm16<true>(A, m, k, w16, n, C, scratch, st);
      return;
    case DType::F16:
      CUDA_REQUIRE(scratch != nullptr, "gemm: F16 weights need scratch of M*K");
      gemm16<false>(A, m, k, w16, n, C, scratch, st);
      return;
  }
  CUDA_REQUIRE(false, "gemm: unknown weight type");
}

}  // namespace cuda
}  // namespace difflm
