// Trial tilings of the BF16 tensor-core GEMM kernel (cuda/gemm_tc.cuh), timed at LLaDA-8B shapes.
//
// Build: nvcc -std=c++17 -O3 -arch=sm_90a -I native/engine -I cuda bench/cuda/gemm.cu
//          native/engine/errors.cpp -o gemm_bench      (sm_90a: versions 9-12 use wgmma)
// Run:   ./gemm_bench            (all versions)    ./gemm_bench 3   (version 3 only)
//
// Every mma.sync version computes A16 . W^T with the same k order (k16 steps from 0 to K), so
// they must be bit-identical to version 1, which test/gpu validates against the CPU; wgmma
// versions must be within 1e-6 rel L2 of it. Checked on 64 rows spread over M before timing (L2
// flushed before each run, CUDA events, 10 runs).
// Versions (BM x BN x BK, warps -> warp tile, stages, min blocks per SM), with what they gave on
// one H100 80GB HBM3 (TFLOP/s over the 8 LLaDA shapes, M 512/2048 x (N,K) in (4096,4096),
// (12288,4096), (4096,12288), (126464,4096); and at 8192^3; cuBLAS gives 770-777 at 8192^3):
//   1  128x128x32, 2x4 -> 64x32, 4 stages, 2/SM   204-287, 279  the first tiling
//   2  128x128x64, 2x4 -> 64x32, 3 stages, 2/SM   225-314, 322
//   3  128x256x32, 2x4 -> 64x64, 4 stages, 1/SM   118-253, 241  too few blocks at M 512
//   4  128x128x32, 2x2 -> 64x64, 4 stages, 2/SM   199-287, 288
//   5  256x128x32, 4x2 -> 64x64, 4 stages, 1/SM   122-268, 261
//   6  128x256x64, 2x4 -> 64x64, 3 stages, 1/SM   148-324, 332
//   7  128x128x64, 2x2 -> 64x64, 3 stages, 2/SM   246-336, 336  shipped (mma.sync devices)
//   8  128x128x32, 2x4 -> 64x32, 4 stages, 1/SM   213-233, 216  v1 without the register cap
//   9  wgmma 128x128x64, 2 warpgroups of 64x128, 3 stages, 2/SM (cuda/gemm_wgmma.cuh)
//                                                 320-553, 533  shipped (sm_90a), grid > #SMs
//  10  wgmma 128x128x64, 4 stages, 1/SM           369-520, 517  shipped (sm_90a), grid <= #SMs
//  11  wgmma 128x256x64, 2 warpgroups of 64x256, 3 stages, 1/SM   220-503, 518
//  12  wgmma 128x256x64, 4 stages, 1/SM           221-506, 512
// All twelve gave bit-identical outputs on the sampled rows.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <vector>

#include "gemm_tc.cuh"
#include "gemm_wgmma.cuh"

using namespace difflm::cuda;

#define CK(call) CUDA_CHECK(call)

namespace {

using V1 = tc::Tiling<128, 128, 32, 2, 4, 4, 2>;
using V2 = tc::Tiling<128, 128, 64, 2, 4, 3, 2>;
using V3 = tc::Tiling<128, 256, 32, 2, 4, 4, 1>;
using V4 = tc::Tiling<128, 128, 32, 2, 2, 4, 2>;
using V5 = tc::Tiling<256, 128, 32, 4, 2, 4, 1>;
using V6 = tc::Tiling<128, 256, 64, 2, 4, 3, 1>;
using V7 = tc::Tiling<128, 128, 64, 2, 2, 3, 2>;
using V8 = tc::Tiling<128, 128, 32, 2, 4, 4, 1>;
using V9 = wg::Tiling<128, 3, 2>;
using V10 = wg::Tiling<128, 4, 1>;
using V11 = wg::Tiling<256, 3, 1>;
using V12 = wg::Tiling<256, 4, 1>;

using Launch = void (*)(const uint16_t*, const uint16_t*, float*, int, int, int, cudaStream_t);
const Launch kVersions[] = {
    tc::launch<V1, true, true>, tc::launch<V2, true, true>, tc::launch<V3, true, true>,
    tc::launch<V4, true, true>, tc::launch<V5, true, true>, tc::launch<V6, true, true>,
    tc::launch<V7, true, true>, tc::launch<V8, true, true>, wg::launch<V9, true>,
    wg::launch<V10, true>,      wg::launch<V11, true>,      wg::launch<V12, true>,
};
constexpr int kNumVersions = sizeof(kVersions) / sizeof(kVersions[0]);

void* dmalloc(size_t bytes) {
  void* p = nullptr;
  CK(cudaMalloc(&p, bytes));
  return p;
}

// Random bf16 bits, a 4 Mi-element block repeated.
void fill_bf16(uint16_t* d, size_t n, std::mt19937& rng) {
  const size_t block = std::min<size_t>(n, size_t(1) << 22);
  std::vector<uint16_t> h(block);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (auto& x : h) {
    const float f = u(rng);
    uint32_t w;
    std::memcpy(&w, &f, 4);
    x = static_cast<uint16_t>(w >> 16);
  }
  for (size_t off = 0; off < n; off += block)
    CK(cudaMemcpy(d + off, h.data(), std::min(block, n - off) * 2, cudaMemcpyHostToDevice));
}

std::vector<float> sample_rows(const float* dC, int M, int N) {
  std::vector<float> out;
  std::vector<float> row(N);
  for (int i = 0; i < 64; ++i) {
    const int64_t m = static_cast<int64_t>(i) * (M - 1) / 63;
    CK(cudaMemcpy(row.data(), dC + m * N, N * 4, cudaMemcpyDeviceToHost));
    out.insert(out.end(), row.begin(), row.end());
  }
  return out;
}

double time_ms(const std::function<void()>& f, void* flush, size_t flush_bytes, int reps) {
  f();
  CK(cudaDeviceSynchronize());
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  double total = 0;
  for (int i = 0; i < reps; ++i) {
    CK(cudaMemsetAsync(flush, i & 1, flush_bytes, 0));
    CK(cudaEventRecord(a, 0));
    f();
    CK(cudaEventRecord(b, 0));
    CK(cudaEventSynchronize(b));
    float ms;
    CK(cudaEventElapsedTime(&ms, a, b));
    total += ms;
  }
  CK(cudaEventDestroy(a));
  CK(cudaEventDestroy(b));
  return total / reps;
}

}  // namespace

int main(int argc, char** argv) {
  const int only = argc > 1 ? std::atoi(argv[1]) : 0;
  const int shapes[][3] = {{512, 4096, 4096},   {512, 12288, 4096},   {512, 4096, 12288},
                           {512, 126464, 4096}, {2048, 4096, 4096},   {2048, 12288, 4096},
                           {2048, 4096, 12288}, {2048, 126464, 4096}, {8192, 8192, 8192}};
  int l2 = 0;
  CK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, 0));
  const size_t flush_bytes = 2 * static_cast<size_t>(l2);
  void* flush = dmalloc(flush_bytes);
  std::mt19937 rng(1);
  int bad = 0;
  std::printf("%-3s %-22s %10s %9s\n", "v", "M N K", "ms", "TFLOP/s");
  for (const auto& s : shapes) {
    const int M = s[0], N = s[1], K = s[2];
    auto* A = static_cast<uint16_t*>(dmalloc(static_cast<size_t>(M) * K * 2));
    auto* W = static_cast<uint16_t*>(dmalloc(static_cast<size_t>(N) * K * 2));
    auto* C = static_cast<float*>(dmalloc(static_cast<size_t>(M) * N * 4));
    fill_bf16(A, static_cast<size_t>(M) * K, rng);
    fill_bf16(W, static_cast<size_t>(N) * K, rng);
    kVersions[0](A, W, C, M, N, K, nullptr);
    CK(cudaDeviceSynchronize());
    const auto ref = sample_rows(C, M, N);
    for (int v = 1; v <= kNumVersions; ++v) {
      if (only && v != only) continue;
      if (v >= 9 && !wg::wgmma_available(nullptr)) {
        std::printf("%-3d skipped: no sm_90a code for this device\n", v);
        continue;
      }
      CK(cudaMemset(C, 0xff, static_cast<size_t>(M) * N * 4));
      kVersions[v - 1](A, W, C, M, N, K, nullptr);
      CK(cudaDeviceSynchronize());
      const auto got = sample_rows(C, M, N);
      size_t diff = 0;
      double num = 0, den = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        diff += std::memcmp(&got[i], &ref[i], 4) != 0;
        const double e = static_cast<double>(got[i]) - ref[i];
        num += std::isfinite(e) ? e * e : 1e30;
        den += static_cast<double>(ref[i]) * ref[i];
      }
      const double rel = std::sqrt(num / den);
      const bool ok = v <= 8 ? diff == 0 : rel <= 1e-6;
      const double ms =
          time_ms([&] { kVersions[v - 1](A, W, C, M, N, K, nullptr); }, flush, flush_bytes, 10);
      char shape[64];
      std::snprintf(shape, sizeof shape, "%d %d %d", M, N, K);
      std::printf("%-3d %-22s %10.4f %9.1f   rel_l2 vs v1 %.1e%s\n", v, shape, ms,
                  2.0 * M * N * K / (ms * 1e9), rel, ok ? "" : "  MISMATCH");
      if (!ok) {  // where it goes wrong, for a layout bug: sample row, column, values
        int shown = 0;
        for (size_t i = 0; i < got.size() && shown < 6; ++i)
          if (!(std::fabs(got[i] - ref[i]) <= 1e-3 * std::fabs(ref[i]) + 1e-3)) {
            std::printf("    sample row %zu col %zu: got %g want %g\n", i / N, i % N, got[i],
                        ref[i]);
            ++shown;
          }
      }
      diff = ok ? 0 : 1;
      bad += diff != 0;
      std::fflush(stdout);
    }
    CK(cudaFree(A));
    CK(cudaFree(W));
    CK(cudaFree(C));
  }
  std::printf("%s\n", bad ? "MISMATCHES" : "all versions agree with version 1");
  return bad ? 1 : 0;
}
