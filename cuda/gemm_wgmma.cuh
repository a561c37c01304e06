// A Hopper (sm_90a) variant of the 16-bit GEMM: warpgroup MMA (wgmma.mma_async) reading both
// operands from shared memory through matrix descriptors, fed by the same cp.async multi-stage
// pipeline as gemm_tc.cuh. Used by gemm.cu when the binary carries sm_90a code and the device is
// sm_90; timed against the mma.sync tilings in bench/cuda/gemm.cu.
//
// Block tile 128 x BN x 64, 256 threads = 2 warpgroups; warpgroup w computes rows 64w..64w+63
// with BN/128 wgmma.m64n128k16 per k16 step. Shared tiles are K-major with the 128-byte swizzle
// (PTX ISA, "Shared Memory Matrix Layout" / "Matrix Descriptor"): row r of a tile is 128 bytes
// (64 elements); its 16-byte chunk c is stored at chunk c ^ (r % 8); each 8-row group is a
// 1024-byte atom, so the descriptor's stride byte offset is 1024 (the leading byte offset is
// unused for swizzled K-major tiles) and tiles start 1024-byte aligned. The k16 step s inside
// the 64-wide row advances the descriptor start address by 32 s bytes.
// Accumulators (PTX ISA, "Register Fragments" of wgmma .m64nNk16, f32): warp q of the warpgroup
// holds rows 16q + g and 16q + g + 8 (g = lane / 4); d[4i + 0,1] are (row 16q+g, cols 8i+2t,
// 8i+2t+1), d[4i + 2,3] the same cols of row 16q+g+8 (t = lane % 4).
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>

#include "common.cuh"

namespace difflm {
namespace cuda {
namespace wg {

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define DIFFLM_WGMMA 1
#endif

template <int BN_, int STAGES_, int MIN_BLOCKS_>
struct Tiling {
  static constexpr int BM = 128, BN = BN_, BK = 64, STAGES = STAGES_, MIN_BLOCKS = MIN_BLOCKS_;
  static constexpr int kThreads = 256;
  static constexpr int NB = BN / 128;  // m64n128 wgmma per warpgroup per k16 step
  static constexpr int A_BYTES = BM * 128, B_BYTES = BN * 128, STAGE_BYTES = A_BYTES + B_BYTES;
  static constexpr size_t SMEM = static_cast<size_t>(STAGES) * STAGE_BYTES + 1024;  // + align
  static_assert(BN % 128 == 0 && STAGES >= 2, "tiling");
};

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, int src_bytes) {
#if defined(DIFFLM_WGMMA)
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
               "r"(src_bytes)
               : "memory");
#endif
}

// Descriptor of a K-major, 128-byte-swizzled tile at shared address `a`.
__device__ __forceinline__ uint64_t make_desc(uint32_t a) {
  uint64_t d = 0;
  d |= static_cast<uint64_t>((a & 0x3ffff) >> 4);  // start address >> 4, bits 0-13
  d |= static_cast<uint64_t>(1) << 16;             // leading byte offset (unused here)
  d |= static_cast<uint64_t>(1024 >> 4) << 32;     // stride byte offset: one 8-row atom
  d |= static_cast<uint64_t>(1) << 62;             // swizzle mode 1: 128 B
  return d;
}

// One wgmma.m64n128k16 with f32 accumulators in d, A and B from shared memory through the
// descriptors da and db; TYPE is the input type's PTX name ("bf16" or "f16").
#define DIFFLM_WGMMA_M64N128K16(TYPE)                                                              \
  asm volatile(                                                                                    \
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"                                                 \
      "wgmma.mma_async.sync.aligned.m64n128k16.f32." TYPE "." TYPE                                 \
      " "                                                                                          \
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, "     \
      "%19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, " \
      "%37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, " \
      "%55, %56, %57, %58, %59, %60, %61, %62, %63}, "                                             \
      "%64, %65, p, 1, 1, 0, 0;\n}\n"                                                              \
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),        \
        "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]),    \
        "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), \
        "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), \
        "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), \
        "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), \
        "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), \
        "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), \
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), \
        "+f"(d[63])                                                                                \
      : "l"(da), "l"(db), "r"(1))

template <bool kBf16>
__device__ __forceinline__ void wgmma_m64n128k16(float (&d)[64], uint64_t da, uint64_t db) {
#if defined(DIFFLM_WGMMA)
  if (kBf16) {
    DIFFLM_WGMMA_M64N128K16("bf16");
  } else {
    DIFFLM_WGMMA_M64N128K16("f16");
  }
#endif
}
#undef DIFFLM_WGMMA_M64N128K16

__device__ __forceinline__ void wgmma_fence() {
#if defined(DIFFLM_WGMMA)
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wgmma_commit() {
#if defined(DIFFLM_WGMMA)
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
template <int N>
__device__ __forceinline__ void wgmma_wait() {
#if defined(DIFFLM_WGMMA)
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}
// Generic-proxy writes (cp.async) made visible to the async proxy that wgmma reads through.
__device__ __forceinline__ void fence_proxy_async() {
#if defined(DIFFLM_WGMMA)
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}
// Pins accumulator registers in place around asynchronous wgmma (the compiler must not move
// them while the hardware writes them), as CUTLASS's warpgroup_fence_operand.
__device__ __forceinline__ void fence_operand(float& r) {
  asm volatile("" : "+f"(r)::"memory");
}

// ROWS x 64 tile of src (rows r0.., cols k0.., leading dimension K, `rows` valid) into the
// swizzled tile at shared address dst; zeros past the edges (K % 8 == 0).
template <class T, int ROWS>
__device__ __forceinline__ void load_tile(uint32_t dst, const uint16_t* __restrict__ src, int rows,
                                          int K, int r0, int k0) {
  constexpr int kIters = ROWS * 8 / T::kThreads;
#pragma unroll
  for (int i = 0; i < kIters; ++i) {
    const int c = threadIdx.x + i * T::kThreads;
    const int r = c >> 3, ch = c & 7;
    const int gr = r0 + r, gk = k0 + ch * 8;
    const bool ok = gr < rows && gk < K;
    const uint16_t* s = src + static_cast<int64_t>(gr) * K + gk;
    cp_async16(dst + r * 128 + ((ch ^ (r & 7)) << 4), ok ? s : src, ok ? 16 : 0);
  }
}

constexpr int kGroupM = 16;

template <class T, bool kBf16>
__global__ void __launch_bounds__(256, T::MIN_BLOCKS)
    gemm_wgmma_kernel(const uint16_t* __restrict__ A16, const uint16_t* __restrict__ W,
                      float* __restrict__ C, int M, int N, int K) {
#if defined(DIFFLM_WGMMA)
  DIFFLM_DYNAMIC_SMEM(uint8_t, smem_raw, 1024);
  const uint32_t base = (smem_addr(smem_raw) + 1023u) & ~1023u;

  const int tiles_m = (M + T::BM - 1) / T::BM, tiles_n = (N + T::BN - 1) / T::BN;
  const int per_group = kGroupM * tiles_n;
  const int pid = blockIdx.x, first_m = (pid / per_group) * kGroupM;
  const int group_m = min(tiles_m - first_m, kGroupM);
  const int m0 = (first_m + (pid % per_group) % group_m) * T::BM;
  const int n0 = ((pid % per_group) / group_m) * T::BN;
  const int wgi = threadIdx.x >> 7;
  const int nk = (K + T::BK - 1) / T::BK;

  float d[T::NB][64];
#pragma unroll
  for (int b = 0; b < T::NB; ++b)
#pragma unroll
    for (int i = 0; i < 64; ++i) d[b][i] = 0.f;

#pragma unroll
  for (int s = 0; s < T::STAGES - 1; ++s) {
    if (s < nk) {
      load_tile<T, T::BM>(base + s * T::STAGE_BYTES, A16, M, K, m0, s * T::BK);
      load_tile<T, T::BN>(base + s * T::STAGE_BYTES + T::A_BYTES, W, N, K, n0, s * T::BK);
    }
    asm volatile("cp.async.commit_group;\n" ::: "memory");
  }

  for (int kt = 0; kt < nk; ++kt) {
    // Tile kt landed (this thread's copies), is made visible to the async proxy, then to all.
    asm volatile("cp.async.wait_group %0;\n" ::"n"(T::STAGES - 2) : "memory");
    fence_proxy_async();
    __syncthreads();
    const uint32_t stage = base + (kt % T::STAGES) * T::STAGE_BYTES;
    const uint32_t a_addr = stage + wgi * 64 * 128, b_addr = stage + T::A_BYTES;
#pragma unroll
    for (int b = 0; b < T::NB; ++b)
#pragma unroll
      for (int i = 0; i < 64; ++i) fence_operand(d[b][i]);
    wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < 4; ++ks) {
      const uint64_t da = make_desc(a_addr + ks * 32);
#pragma unroll
      for (int b = 0; b < T::NB; ++b)
        wgmma_m64n128k16<kBf16>(d[b], da, make_desc(b_addr + b * 128 * 128 + ks * 32));
    }
    wgmma_commit();
#pragma unroll
    for (int b = 0; b < T::NB; ++b)
#pragma unroll
      for (int i = 0; i < 64; ++i) fence_operand(d[b][i]);
    // The group of tile kt-1 is done (this warpgroup); after the barrier, for both, so its
    // buffer, (kt-1) % STAGES, can be refilled with tile kt + STAGES - 1.
    wgmma_wait<1>();
    __syncthreads();
    const int pf = kt + T::STAGES - 1;
    if (pf < nk) {
      const uint32_t st = base + (pf % T::STAGES) * T::STAGE_BYTES;
      load_tile<T, T::BM>(st, A16, M, K, m0, pf * T::BK);
      load_tile<T, T::BN>(st + T::A_BYTES, W, N, K, n0, pf * T::BK);
    }
    asm volatile("cp.async.commit_group;\n" ::: "memory");
  }
  wgmma_wait<0>();
#pragma unroll
  for (int b = 0; b < T::NB; ++b)
#pragma unroll
    for (int i = 0; i < 64; ++i) fence_operand(d[b][i]);
  asm volatile("cp.async.wait_group 0;\n" ::: "memory");

  const int lane = threadIdx.x & 31, q = (threadIdx.x >> 5) & 3, g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int b = 0; b < T::NB; ++b)
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const int col = n0 + b * 128 + i * 8 + 2 * t;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int row = m0 + wgi * 64 + q * 16 + g + 8 * h;
        if (row >= M) continue;
        float* c = C + static_cast<int64_t>(row) * N;
        if (col < N) c[col] = d[b][4 * i + 2 * h];
        if (col + 1 < N) c[col + 1] = d[b][4 * i + 2 * h + 1];
      }
    }
#else
  __trap();  // built without sm_90a code; the host checks wgmma_available() first
#endif
}

// Whether this binary runs wgmma code on the current device: a one-thread probe on `st`, once
// per device. (sm_90a code runs only on compute capability 9.0; elsewhere the runtime picks other
// code, e.g. JIT-compiled compute_90 PTX, in which the kernels above are traps.)
static __device__ int g_wgmma_flag;
__global__ void probe_kernel() {
#if defined(DIFFLM_WGMMA)
  g_wgmma_flag = 1;
#else
  g_wgmma_flag = 0;
#endif
}

inline bool wgmma_available(cudaStream_t st) {
  static std::atomic<int> cache[64] = {};  // 0 unknown, 1 no, 2 yes
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  std::atomic<int>& slot = cache[dev & 63];
  int v = slot.load(std::memory_order_relaxed);
  if (v == 0) {
    int major = 0, found = 0;
    CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    if (major == 9) {
      DIFFLM_LAUNCH(probe_kernel, 1, 1, 0, st);
      CUDA_CHECK_LAUNCH("wgmma probe_kernel");
      CUDA_CHECK(cudaMemcpyFromSymbolAsync(&found, g_wgmma_flag, sizeof(int), 0,
                                           cudaMemcpyDeviceToHost, st));
      CUDA_CHECK(cudaStreamSynchronize(st));
    }
    v = found ? 2 : 1;
    slot.store(v, std::memory_order_relaxed);
  }
  return v == 2;
}

template <class T, bool kBf16>
void launch(const uint16_t* A16, const uint16_t* W, float* C, int M, int N, int K,
            cudaStream_t st) {
  auto kernel = gemm_wgmma_kernel<T, kBf16>;
  static std::atomic<uint64_t> done{0};
  allow_dynamic_smem(kernel, static_cast<int>(T::SMEM), done);
  const int64_t blocks = static_cast<int64_t>(ceil_div(M, T::BM)) * ceil_div(N, T::BN);
  CUDA_REQUIRE(blocks <= 0x7fffffff, "gemm: grid too large");
  DIFFLM_LAUNCH(kernel, static_cast<unsigned>(blocks), T::kThreads, T::SMEM, st, A16, W, C, M, N,
                K);
  CUDA_CHECK_LAUNCH("gemm_wgmma_kernel");
}

}  // namespace wg
}  // namespace cuda
}  // namespace difflm
