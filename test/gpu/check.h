// The GPU check harness: each CUDA kernel against its CPU twin on fresh random inputs (outputs
// poisoned with NaN before every run; NaN never passes), then timed against the device's
// measured ceilings. Cases register with GPU_CASE and run in file order of registration.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace difflm_gpu {

// Aborts the check with file, line and CUDA's message when a CUDA call fails.
void cuda_check(int status, const char* what, const char* file, int line);
#define CK(call) ::difflm_gpu::cuda_check(static_cast<int>(call), #call, __FILE__, __LINE__)

// Whether this is difflm_gpu_check_emu (test/cuda-emu: the kernels run on the CPU): nothing is
// timed there, and the cases at LLaDA-8B size (GPU_CASE_LARGE) are left out, saying so.
#if defined(DIFFLM_GPU_CHECK_EMULATED)
constexpr bool kEmulated = true;
#else
constexpr bool kEmulated = false;
#endif

struct Case {
  const char* name;
  std::function<void()> fn;
  bool large;  // LLaDA-8B-size work: hours on the emulator
};
std::vector<Case>& cases();
struct Register {
  Register(const char* name, std::function<void()> fn, bool large) {
    cases().push_back({name, fn, large});
  }
};
#define GPU_CASE_CAT2(a, b) a##b
#define GPU_CASE_CAT(a, b) GPU_CASE_CAT2(a, b)
#define GPU_CASE_DEFINE(name, large)                                                               \
  static void GPU_CASE_CAT(gpu_case_, name)();                                                     \
  static ::difflm_gpu::Register GPU_CASE_CAT(gpu_reg_, name)(#name, GPU_CASE_CAT(gpu_case_, name), \
                                                             large);                               \
  static void GPU_CASE_CAT(gpu_case_, name)()
#define GPU_CASE(name) GPU_CASE_DEFINE(name, false)
#define GPU_CASE_LARGE(name) GPU_CASE_DEFINE(name, true)

// Records a comparison: relative L2 error of `got` against `want` must be <= tol; any NaN or
// size mismatch fails. Prints one line; returns whether it passed.
bool validate(const std::string& what, const std::vector<float>& got,
              const std::vector<float>& want, double tol);
// Records an exact comparison of integer outputs (tokens, indices).
bool validate_exact(const std::string& what, const std::vector<int32_t>& got,
                    const std::vector<int32_t>& want);
// Records a plain pass/fail with a message.
bool expect(const std::string& what, bool ok, const std::string& detail = "");

// Device buffers: RAII over cudaMalloc; upload/download helpers.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* get() const { return ptr_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  size_t bytes() const { return bytes_; }
  void upload(const void* src, size_t bytes);
  void download(void* dst, size_t bytes) const;
  void poison();  // fills with 0xff bytes (NaN for floats)

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

template <class T>
std::vector<T> download_vec(const DeviceBuffer& b, size_t n) {
  std::vector<T> v(n);
  b.download(v.data(), n * sizeof(T));
  return v;
}

std::vector<float> random_floats(size_t n, std::mt19937& rng, float scale = 1.f);

// cuBLAS for the checks (cuda/blas.h), opened once on the default stream; nullptr (and *why)
// when it cannot be used.
}  // namespace difflm_gpu
namespace difflm {
namespace cuda {
class Blas;
}
}  // namespace difflm
namespace difflm_gpu {
difflm::cuda::Blas* check_blas(std::string* why = nullptr);

// Times `launch` (after one warm-up) with CUDA events over `reps` runs; milliseconds per run.
// On the emulator it returns NaN without running `launch`, and report() records nothing.
double time_ms(const std::function<void()>& launch, int reps = 20);

// Adds a row to the final table: kernel, shape, time, and achieved TFLOP/s and GB/s against the
// ceilings measured at start-up (a large device copy; a large BF16 GEMM).
void report(const std::string& kernel, const std::string& shape, double ms, double flops,
            double bytes);

}  // namespace difflm_gpu
