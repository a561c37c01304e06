// cuBLAS, loaded at run time with dlopen and never linked, so the binary loads and runs where it
// is absent: gemm()'s 16-bit path (C = A16 . W^T, float32 accumulation on tensor cores) runs on
// cublasGemmEx when the library is there, and on our own kernels otherwise. DIFFLM_CUBLAS=0 in
// the environment turns it off. No CUDA types appear here.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace difflm {
namespace cuda {

class Blas {
 public:
  // A cuBLAS handle on the current device, bound to stream `s` (a cudaStream_t), after a small
  // self-test GEMM; nullptr with *why set when cuBLAS cannot be used.
  static std::unique_ptr<Blas> open(void* s, std::string* why);
  ~Blas();
  Blas(const Blas&) = delete;
  Blas& operator=(const Blas&) = delete;

  // Row-major C[M x N] = A16[M x K] . W[N x K]^T, both BF16 (bf16) or F16, on the stream given
  // to open(). false: cuBLAS does not support this case here (nothing was written; run another
  // kernel); throws EngineError naming cuBLAS's status on any other failure.
  bool gemm16(const uint16_t* A16, const uint16_t* W, float* C, int M, int N, int K, bool bf16);
  // The library file that was loaded, e.g. "libcublas.so.13".
  const std::string& library() const;

 private:
  explicit Blas(void* handle) : handle_(handle) {}
  void* handle_;  // cublasHandle_t
};

}  // namespace cuda
}  // namespace difflm
