// difflm_gpu_check [filter | !filter]: prints the device, measures its ceilings (a 1 GiB device
// copy; an 8192^3 BF16 GEMM by cuBLAS loaded at run time, or by our own gemm when cuBLAS is
// absent), runs every GPU_CASE whose name contains `filter` (with "!": every case whose name does
// not), and ends with the timing table and the line "N passed, M failed" (exit status 1 if
// anything failed).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include "blas.h"
#include "check.h"
#include "harness.h"
#include "kernels.h"

using namespace difflm_gpu;

namespace difflm_gpu {

difflm::cuda::Blas* check_blas(std::string* why) {
  static std::string reason;
  // Kept for the whole run and never destroyed (no cuBLAS teardown racing the runtime's at exit).
  // gemm() takes cuBLAS from sm_80 on, so below that the cuBLAS checks would test our kernels.
  static difflm::cuda::Blas* blas = [] {
    cudaDeviceProp p{};
    CK(cudaGetDeviceProperties(&p, 0));
    if (p.major < 8) {
      reason = "cuBLAS is used from compute capability 8.0 on";
      return static_cast<difflm::cuda::Blas*>(nullptr);
    }
    return difflm::cuda::Blas::open(nullptr, &reason).release();
  }();
  if (why) *why = reason;
  return blas;
}

}  // namespace difflm_gpu

namespace {

// Random bf16 bits into a device buffer of n elements: a 4 Mi-element random block repeated
// (generating hundreds of millions of values on the host would take longer than the GEMM runs).
void fill_random_bf16(DeviceBuffer& b, size_t n, std::mt19937& rng) {
  const size_t block = std::min<size_t>(n, size_t(1) << 22);
  std::vector<uint16_t> bits(block);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (auto& x : bits) {
    const float f = u(rng);
    uint32_t w;
    std::memcpy(&w, &f, 4);
    x = static_cast<uint16_t>(w >> 16);  // truncation is fine for test data
  }
  for (size_t off = 0; off < n; off += block) {
    const size_t len = std::min(block, n - off);
    CK(cudaMemcpy(b.as<uint16_t>() + off, bits.data(), len * 2, cudaMemcpyHostToDevice));
  }
}

double copy_ceiling_gbs() {
  const size_t bytes = size_t(1) << 30;
  DeviceBuffer src(bytes), dst(bytes);
  CK(cudaMemset(src.get(), 1, bytes));
  const double ms = time_ms(
      [&] { CK(cudaMemcpyAsync(dst.get(), src.get(), bytes, cudaMemcpyDeviceToDevice, 0)); }, 5);
  return 2.0 * bytes / (ms * 1e6);  // read + write
}

// Returns TFLOP/s of cuBLAS (cuda/blas.h: loaded at run time, never linked) on BF16 inputs,
// or 0 with `why` set when cuBLAS cannot be used.
double cublas_bf16_tflops(int n, std::string& source, std::string& why) {
  difflm::cuda::Blas* blas = check_blas(&why);
  if (!blas) return 0;
  const size_t nn = static_cast<size_t>(n) * n;
  DeviceBuffer a(nn * 2), b(nn * 2), c(nn * 4);
  std::mt19937 rng(7);
  fill_random_bf16(a, nn, rng);
  fill_random_bf16(b, nn, rng);
  const double ms = time_ms(
      [&] {
        if (!blas->gemm16(a.as<uint16_t>(), b.as<uint16_t>(), c.as<float>(), n, n, n, true))
          throw std::runtime_error("cuBLAS does not support this GEMM here");
      },
      10);
  source = "cuBLAS cublasGemmEx via " + blas->library();
  return 2.0 * n * n * double(n) / (ms * 1e9);
}

double own_bf16_tflops(int n) {
  const size_t nn = static_cast<size_t>(n) * n;
  DeviceBuffer a(nn * 4), w(nn * 2), c(nn * 4), scratch(nn * 2);
  CK(cudaMemset(a.get(), 0x3f, nn * 4));  // 0x3f3f3f3f = 0.747f: finite, not all zero
  std::mt19937 rng(7);
  fill_random_bf16(w, nn, rng);
  const double ms = time_ms(
      [&] {
        difflm::cuda::gemm(a.as<float>(), n, n, w.get(), difflm::DType::BF16, n, c.as<float>(),
                           scratch.as<uint16_t>(), nullptr);
      },
      5);
  return 2.0 * n * n * double(n) / (ms * 1e9);
}

// Runs the cases `filter` selects (all when null), then the table and the summary.
// The kernel cases run before the end-to-end ones ("e2e_..."): a faulty kernel then fails under
// its own name, before a fault that leaves the context unusable could stop the check.
int run_cases(const char* filter) {
  const bool exclude = filter && filter[0] == '!';  // "!e2e": every case but those
  std::vector<Case> order = cases();
  std::stable_partition(order.begin(), order.end(),
                        [](const Case& c) { return std::strncmp(c.name, "e2e", 3) != 0; });
  for (const Case& c : order) {
    if (filter && (exclude ? std::strstr(c.name, filter + 1) != nullptr
                           : std::strstr(c.name, filter) == nullptr))
      continue;
    if (kEmulated && c.large) {
      std::printf("skip  %s: LLaDA-8B-size case, run on a GPU only\n", c.name);
      continue;
    }
    std::printf("== %s\n", c.name);
    std::fflush(stdout);
    try {
      c.fn();
    } catch (const std::exception& ex) {
      expect(std::string(c.name), false, std::string("threw: ") + ex.what());
    }
    CK(cudaDeviceSynchronize());  // a fault inside this case surfaces here, under its name
  }
  return finish();
}

}  // namespace

int main(int argc, char** argv) {
  const char* filter = argc > 1 ? argv[1] : nullptr;
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    std::printf("FAIL  no CUDA device: %s\n", e != cudaSuccess ? cudaGetErrorString(e) : "none");
    std::printf("0 passed, 1 failed\n");
    return 1;
  }
  cudaDeviceProp p;
  CK(cudaGetDeviceProperties(&p, 0));
  CK(cudaSetDevice(0));
  std::printf("device 0: %s, compute capability %d.%d, %.1f GiB, %d SMs, L2 %.0f MiB\n", p.name,
              p.major, p.minor, p.totalGlobalMem / 1073741824.0, p.multiProcessorCount,
              p.l2CacheSize / 1048576.0);

  // Ceilings first, on an idle device. DIFFLM_GPU_CHECK_NO_CEILINGS=1 skips them (runs under
  // compute-sanitizer, where an 8192^3 GEMM would take minutes); the table then shows no %.
  Ceilings ceil;
  if (kEmulated || std::getenv("DIFFLM_GPU_CHECK_NO_CEILINGS")) {
    std::printf("ceilings: skipped (%s)\n",
                kEmulated ? "emulator: nothing is timed" : "DIFFLM_GPU_CHECK_NO_CEILINGS");
    return run_cases(filter);
  }
  ceil.copy_gbs = copy_ceiling_gbs();
  std::printf("ceiling: device copy %.0f GB/s (1 GiB, read + write bytes)\n", ceil.copy_gbs);
  const int n = 8192;
  std::string why;
  ceil.bf16_tflops = cublas_bf16_tflops(n, ceil.bf16_source, why);
  if (ceil.bf16_tflops > 0) {
    std::printf("ceiling: BF16 GEMM %.1f TFLOP/s (%d^3, %s)\n", ceil.bf16_tflops, n,
                ceil.bf16_source.c_str());
  } else {
    ceil.bf16_tflops = own_bf16_tflops(n);
    ceil.bf16_source = "OUR OWN gemm, cuBLAS not loaded";
    std::printf(
        "ceiling: cuBLAS not loaded (%s); using OUR OWN BF16 gemm at %d^3 as the ceiling: "
        "%.1f TFLOP/s, so %%bf16 below compares our kernels with ourselves\n",
        why.c_str(), n, ceil.bf16_tflops);
  }
  set_ceilings(ceil);
  return run_cases(filter);
}
