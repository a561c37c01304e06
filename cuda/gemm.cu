// C[M x N] = A[M x K] . W[N x K]^T (kernels.h: difflm::cuda::gemm). CPU twin: gemm() in
// native/engine/cpu/gemm.h.
//
// Build check: nvcc -std=c++17 -arch=sm_90a -I native/engine -I cuda -c cuda/gemm.cu
// (sm_90a, not sm_90, for the wgmma kernel: with plain sm_90 code H100 runs the mma.sync one.)
//
// 16-bit weights: A is rounded into scratch, then the product runs on cuBLAS when the caller
// passes a Blas (blas.h: loaded at run time, never linked) and the device is sm_80 or newer, else
// on the kernels below.
//
// Kernels:
//   round_a_kernel   A (f32) -> scratch (bf16 or f16 bits), round to nearest even exactly as the
//                    host's f32_to_bf16 / f32_to_f16, so the GPU multiplies the values the CPU's
//                    bf16 path sees.
//   gemm_wgmma_kernel (gemm_wgmma.cuh) Hopper: wgmma.m64n128k16 from 128-byte-swizzled shared
//                    tiles, cp.async pipeline, 128x128x64 blocks of 2 warpgroups; used when the
//                    binary has sm_90a code and the device is 9.0 (K % 8 == 0, aligned pointers).
//   gemm16_kernel    (gemm_tc.cuh) mma.sync.m16n8k16 with f32 accumulation fed by ldmatrix from
//                    padded shared tiles, grouped block raster. Loaders:
//                      async (sm_80+, K % 8 == 0, 16-byte aligned A16 and W): cp.async 16-byte
//                        copies with zero-fill past M/N/K; tile 128x128x64, 4 warps of 64x64,
//                        3 stages (108 KiB), or 128x128x32, 8 warps of 64x32, 4 stages (80 KiB)
//                        where the device allows less shared memory per block;
//                      generic (any K, 2-byte alignment, also sm_75 F16): scalar loads with
//                        per-element bounds, 128x128x32, 2 stages (40 KiB).
//                    m16n8k16 needs sm_80 for both types; on sm_75 (F16 only) each k16 step is
//                    two m16n8k8 instructions.
//   Both tensor-core kernels add the k16 steps in the same order: on H100 their outputs are
//   bit-identical (bench/cuda/gemm.cu checks it).
//   gemm_simt_kernel float32 FMA, block tile 64x64x16, 256 threads, 4x4 outputs per thread: F32
//                    weights, and BF16 weights on devices without bf16 mma (< sm_80; it reads the
//                    rounded A from scratch so results match the tensor-core path).
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>

#include "blas.h"
#include "common.cuh"
#include "gemm_tc.cuh"
#include "gemm_wgmma.cuh"
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
    DIFFLM_LAUNCH((round_a_kernel<kBf16, true>), static_cast<unsigned>(blocks), threads, 0, st, A,
                  dst, n);
  } else {
    DIFFLM_LAUNCH((round_a_kernel<kBf16, false>), static_cast<unsigned>(blocks), threads, 0, st, A,
                  dst, n);
  }
  CUDA_CHECK_LAUNCH("round_a_kernel");
}

template <DType TA, DType TW>
void launch_simt(const void* A, const void* W, float* C, int M, int N, int K, cudaStream_t st) {
  const dim3 grid(ceil_div(N, kSBN), ceil_div(M, kSBM));
  DIFFLM_LAUNCH((gemm_simt_kernel<TA, TW>), grid, 256, 0, st, A, W, C, M, N, K);
  CUDA_CHECK_LAUNCH("gemm_simt_kernel");
}

// The shipped tilings; bench/cuda/gemm.cu times the candidates. H100, LLaDA-8B shapes (cuBLAS
// reaches 770-777 TFLOP/s at 8192^3 there):
//   Hopper (sm_90a code on a 9.0 device), wgmma, 128x128x64, 2 warpgroups of 64x128 (bench 9, 10):
//     HopperWide  3 stages, 2 blocks per SM: 320-553 TFLOP/s, best once the grid fills the SMs;
//     HopperDeep  4 stages, 1 block per SM: 369-520 TFLOP/s, best where the grid has at most one
//                 block per SM (M 512 with N 4096).
//     With the A pre-pass, difflm::cuda::gemm gives 326-510 TFLOP/s (42-66% of cuBLAS).
//   mma.sync elsewhere (bench 7 and 1: 250-336 and 200-290 TFLOP/s on H100):
//     TcBig    128x128x64, 4 warps of 64x64, 3 stages, 108 KiB: devices that allow that much
//              shared memory per block (sm_80, sm_90);
//     TcSmall  128x128x32, 8 warps of 64x32, 4 stages, 80 KiB: the others (sm_86, sm_89: 99 KiB);
//     TcSync   the generic loader, 2 stages, 40 KiB: no opt-in, fits sm_75.
using HopperWide = wg::Tiling<128, 3, 2>;
using HopperDeep = wg::Tiling<128, 4, 1>;
using TcBig = tc::Tiling<128, 128, 64, 2, 2, 3, 2>;
using TcSmall = tc::Tiling<128, 128, 32, 2, 4, 4, 2>;
using TcSync = tc::Tiling<128, 128, 32, 2, 4, 2, 2>;

// Per-device facts the dispatch needs, cached (one query per device and process).
struct DeviceFacts {
  size_t smem_optin;  // largest dynamic shared memory a block may opt in to
  int sms;            // multiprocessors
};
DeviceFacts device_facts() {
  static std::atomic<int> optin_cache[64] = {}, sms_cache[64] = {};
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  std::atomic<int>& o = optin_cache[dev & 63];
  std::atomic<int>& m = sms_cache[dev & 63];
  if (m.load(std::memory_order_acquire) == 0) {
    int optin = 0, sms = 0;
    CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    o.store(optin, std::memory_order_relaxed);
    m.store(sms, std::memory_order_release);  // published after optin
  }
  return {static_cast<size_t>(o.load(std::memory_order_relaxed)),
          m.load(std::memory_order_relaxed)};
}

// C = A16 . W^T on the best kernel for this device (A16 already rounded to the weight's type).
template <bool kBf16>
void gemm16(const uint16_t* A16, int M, int K, const uint16_t* W, int N, float* C, cudaStream_t st,
            Blas* blas) {
  const int cc = device_cc();
  if (blas && cc >= 80 && blas->gemm16(A16, W, C, M, N, K, kBf16)) {
    return;
  } else if (cc < (kBf16 ? 80 : 75)) {
    // No mma for this type on this device: float32 FMA on the same rounded inputs.
    launch_simt<kBf16 ? DType::BF16 : DType::F16, kBf16 ? DType::BF16 : DType::F16>(A16, W, C, M, N,
                                                                                    K, st);
  } else if (cc >= 80 && K % 8 == 0 && is_aligned(A16, 16) && is_aligned(W, 16)) {
    const DeviceFacts f = device_facts();
    if (cc / 10 == 9 && wg::wgmma_available(st)) {
      const int64_t blocks = static_cast<int64_t>(ceil_div(M, 128)) * ceil_div(N, 128);
      if (blocks <= f.sms)
        wg::launch<HopperDeep, kBf16>(A16, W, C, M, N, K, st);
      else
        wg::launch<HopperWide, kBf16>(A16, W, C, M, N, K, st);
    } else if (f.smem_optin >= TcBig::SMEM) {
      tc::launch<TcBig, kBf16, true>(A16, W, C, M, N, K, st);
    } else {
      tc::launch<TcSmall, kBf16, true>(A16, W, C, M, N, K, st);
    }
  } else {
    tc::launch<TcSync, kBf16, false>(A16, W, C, M, N, K, st);
  }
}

// The checks both entry points share; false when there is nothing to multiply (C zeroed for
// an empty sum).
bool gemm_args(const void* A, int64_t M, int64_t K, const void* W, int64_t N, float* C,
               cudaStream_t st) {
  CUDA_REQUIRE(M >= 0 && N >= 0 && K >= 0, "gemm: negative size");
  CUDA_REQUIRE(M < (1ll << 31) && N < (1ll << 31) && K < (1ll << 31), "gemm: size over 2^31");
  if (M == 0 || N == 0) return false;
  if (K == 0) {  // empty sum
    CUDA_CHECK(cudaMemsetAsync(C, 0, static_cast<size_t>(M * N) * sizeof(float), st));
    return false;
  }
  CUDA_REQUIRE(A != nullptr && W != nullptr && C != nullptr, "gemm: null pointer");
  // Grid y counts row tiles (limit 65535): 64-row tiles on the SIMT path.
  CUDA_REQUIRE(ceil_div<int64_t>(M, kSBM) <= 65535, "gemm: M too large for one launch");
  return true;
}

}  // namespace

void gemm(const float* A, int64_t M, int64_t K, const void* W, DType wt, int64_t N, float* C,
          uint16_t* scratch, Stream s, Blas* blas) {
  const cudaStream_t st = to_stream(s);
  if (!gemm_args(A, M, K, W, N, C, st)) return;
  const int m = static_cast<int>(M), n = static_cast<int>(N), k = static_cast<int>(K);
  const auto* w16 = static_cast<const uint16_t*>(W);
  switch (wt) {
    case DType::F32: launch_simt<DType::F32, DType::F32>(A, W, C, m, n, k, st); return;
    case DType::BF16:
      CUDA_REQUIRE(scratch != nullptr, "gemm: BF16 weights need scratch of M*K");
      launch_round<true>(A, scratch, M * K, st);
      gemm16<true>(scratch, m, k, w16, n, C, st, blas);
      return;
    case DType::F16:
      CUDA_REQUIRE(scratch != nullptr, "gemm: F16 weights need scratch of M*K");
      launch_round<false>(A, scratch, M * K, st);
      gemm16<false>(scratch, m, k, w16, n, C, st, blas);
      return;
  }
  CUDA_REQUIRE(false, "gemm: unknown weight type");
}

void gemm_rounded(const uint16_t* A16, int64_t M, int64_t K, const void* W, DType wt, int64_t N,
                  float* C, Stream s, Blas* blas) {
  const cudaStream_t st = to_stream(s);
  CUDA_REQUIRE(wt == DType::BF16 || wt == DType::F16, "gemm_rounded: 16-bit weights only");
  if (!gemm_args(A16, M, K, W, N, C, st)) return;
  const int m = static_cast<int>(M), n = static_cast<int>(N), k = static_cast<int>(K);
  const auto* w16 = static_cast<const uint16_t*>(W);
  if (wt == DType::BF16)
    gemm16<true>(A16, m, k, w16, n, C, st, blas);
  else
    gemm16<false>(A16, m, k, w16, n, C, st, blas);
}

}  // namespace cuda
}  // namespace difflm
