// The GPU check harness (check.h): comparisons that print one `ok`/`FAIL` line each and count,
// device buffers, timing with CUDA events after an L2 flush, and the report table.
#include "check.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "harness.h"

namespace difflm_gpu {
namespace {

int g_passed = 0, g_failed = 0;
Ceilings g_ceil;

struct Row {
  std::string kernel, shape;
  double ms, flops, bytes;
};
std::vector<Row>& rows() {
  static std::vector<Row> r;
  return r;
}

bool record(bool ok, const std::string& line) {
  (ok ? g_passed : g_failed)++;
  std::printf("%-4s  %s\n", ok ? "ok" : "FAIL", line.c_str());
  std::fflush(stdout);
  return ok;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

}  // namespace

void cuda_check(int status, const char* what, const char* file, int line) {
  if (status == static_cast<int>(cudaSuccess)) return;
  std::printf("FAIL  CUDA: %s failed at %s:%d: %s\n", what, file, line,
              cudaGetErrorString(static_cast<cudaError_t>(status)));
  ++g_failed;
  finish();  // the context may be unusable: print what we have and stop
  std::exit(1);
}

std::vector<Case>& cases() {
  static std::vector<Case> c;
  return c;
}

bool validate(const std::string& what, const std::vector<float>& got,
              const std::vector<float>& want, double tol) {
  if (got.size() != want.size())
    return record(false, what + ": size " + std::to_string(got.size()) +
                             " != " + std::to_string(want.size()));
  double num = 0, den = 0, worst = -1;
  size_t worst_i = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i]) || !std::isfinite(want[i]))
      return record(false, what + ": non-finite at " + std::to_string(i) + " (got " +
                               fmt("%g", got[i]) + ", want " + fmt("%g", want[i]) + ")");
    const double d = static_cast<double>(got[i]) - want[i];
    num += d * d;
    den += static_cast<double>(want[i]) * want[i];
    if (std::fabs(d) > worst) worst = std::fabs(d), worst_i = i;
  }
  // Relative L2; an all-zero reference falls back to the absolute L2.
  const double err = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  std::string line = what + ": rel_l2 " + fmt("%.2e", err) + " (tol " + fmt("%.0e", tol) + ")";
  const bool ok = err <= tol;
  if (!ok && !got.empty())
    line += ", worst at " + std::to_string(worst_i) + ": got " + fmt("%.7g", got[worst_i]) +
            " want " + fmt("%.7g", want[worst_i]);
  return record(ok, line);
}

bool validate_exact(const std::string& what, const std::vector<int32_t>& got,
                    const std::vector<int32_t>& want) {
  if (got.size() != want.size())
    return record(false, what + ": size " + std::to_string(got.size()) +
                             " != " + std::to_string(want.size()));
  size_t bad = 0, first = got.size();
  for (size_t i = 0; i < got.size(); ++i)
    if (got[i] != want[i]) {
      if (bad++ == 0) first = i;
    }
  if (bad == 0) return record(true, what + ": " + std::to_string(got.size()) + " exact");
  return record(false, what + ": " + std::to_string(bad) + " of " + std::to_string(got.size()) +
                           " differ, first at " + std::to_string(first) + ": got " +
                           std::to_string(got[first]) + " want " + std::to_string(want[first]));
}

bool expect(const std::string& what, bool ok, const std::string& detail) {
  return record(ok, detail.empty() ? what : what + ": " + detail);
}

DeviceBuffer::DeviceBuffer(size_t bytes) : bytes_(bytes) {
  CK(cudaMalloc(&ptr_, std::max<size_t>(bytes, 1)));
}
DeviceBuffer::~DeviceBuffer() {
  if (ptr_) cudaFree(ptr_);  // no check: may run during unwinding
}
void DeviceBuffer::upload(const void* src, size_t bytes) {
  CK(cudaMemcpy(ptr_, src, bytes, cudaMemcpyHostToDevice));
}
void DeviceBuffer::download(void* dst, size_t bytes) const {
  CK(cudaMemcpy(dst, ptr_, bytes, cudaMemcpyDeviceToHost));
}
void DeviceBuffer::poison() {
  CK(cudaMemset(ptr_, 0xff, std::max<size_t>(bytes_, 1)));
}

std::vector<float> random_floats(size_t n, std::mt19937& rng, float scale) {
  std::uniform_real_distribution<float> u(-scale, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

double time_ms(const std::function<void()>& launch, int reps) {
  if (kEmulated) return std::numeric_limits<double>::quiet_NaN();
  // A buffer twice the L2 size, rewritten before every timed run so no run starts with its
  // inputs in L2 (as llm.c's benchmark_kernel does).
  static DeviceBuffer* flush = nullptr;
  if (!flush) {
    int dev = 0, l2 = 0;
    CK(cudaGetDevice(&dev));
    CK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev));
    flush = new DeviceBuffer(std::max<size_t>(2 * static_cast<size_t>(l2), 1 << 20));
  }
  launch();  // warm-up (also the first-call set-up: attributes, module load)
  CK(cudaGetLastError());
  CK(cudaDeviceSynchronize());
  cudaEvent_t start, stop;
  CK(cudaEventCreate(&start));
  CK(cudaEventCreate(&stop));
  double total = 0;
  reps = std::max(reps, 1);
  for (int i = 0; i < reps; ++i) {
    CK(cudaMemsetAsync(flush->get(), i & 1, flush->bytes(), 0));
    CK(cudaEventRecord(start, 0));
    launch();
    CK(cudaEventRecord(stop, 0));
    CK(cudaEventSynchronize(stop));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, start, stop));
    total += ms;
  }
  CK(cudaEventDestroy(start));
  CK(cudaEventDestroy(stop));
  CK(cudaGetLastError());
  return total / reps;
}

void report(const std::string& kernel, const std::string& shape, double ms, double flops,
            double bytes) {
  if (kEmulated) return;
  rows().push_back({kernel, shape, ms, flops, bytes});
  std::printf("      time  %s %s: %.4f ms\n", kernel.c_str(), shape.c_str(), ms);
  std::fflush(stdout);
}

void set_ceilings(const Ceilings& c) {
  g_ceil = c;
}
int passed_count() {
  return g_passed;
}
int failed_count() {
  return g_failed;
}

int finish() {
  if (!rows().empty()) {
    std::printf(
        "\nceilings: copy %.0f GB/s (1 GiB device-to-device, read+write), BF16 %.1f "
        "TFLOP/s (%s)\n",
        g_ceil.copy_gbs, g_ceil.bf16_tflops, g_ceil.bf16_source.c_str());
    std::printf("%-28s %-34s %10s %9s %7s %9s %7s\n", "kernel", "shape", "ms", "TFLOP/s", "%bf16",
                "GB/s", "%copy");
    for (const Row& r : rows()) {
      const double tflops = r.flops > 0 && r.ms > 0 ? r.flops / (r.ms * 1e9) : 0;
      const double gbs = r.bytes > 0 && r.ms > 0 ? r.bytes / (r.ms * 1e6) : 0;
      const std::string tf = tflops > 0 ? fmt("%.2f", tflops) : "-";
      const std::string tp = tflops > 0 && g_ceil.bf16_tflops > 0
                                 ? fmt("%.1f", 100 * tflops / g_ceil.bf16_tflops)
                                 : "-";
      const std::string gb = gbs > 0 ? fmt("%.1f", gbs) : "-";
      const std::string gp =
          gbs > 0 && g_ceil.copy_gbs > 0 ? fmt("%.1f", 100 * gbs / g_ceil.copy_gbs) : "-";
      std::printf("%-28s %-34s %10.4f %9s %7s %9s %7s\n", r.kernel.c_str(), r.shape.c_str(), r.ms,
                  tf.c_str(), tp.c_str(), gb.c_str(), gp.c_str());
    }
  }
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  std::fflush(stdout);
  return g_failed == 0 ? 0 : 1;
}

}  // namespace difflm_gpu
