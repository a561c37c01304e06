#include "blas.h"

#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "dtype.h"
#include "errors.h"

namespace difflm {
namespace cuda {

namespace {

// cuBLAS's ABI, declared here since its headers are not used: CUBLAS_OP_N 0, CUBLAS_OP_T 1,
// CUDA_R_32F 0, CUDA_R_16F 2, CUDA_R_16BF 14, CUBLAS_COMPUTE_32F 68, CUBLAS_GEMM_DEFAULT -1;
// status 0 is success, 3 is CUBLAS_STATUS_ALLOC_FAILED.
using CreateFn = int (*)(void**);
using DestroyFn = int (*)(void*);
using SetStreamFn = int (*)(void*, void*);
using GemmExFn = int (*)(void*, int, int, int, int, int, const void*, const void*, int, int,
                         const void*, int, int, const void*, void*, int, int, int, int);

// The library, loaded once per process (function-local static: thread-safe). It is never
// unloaded: unloading cuBLAS can run into its exit handlers.
struct Library {
  CreateFn create = nullptr;
  DestroyFn destroy = nullptr;
  SetStreamFn set_stream = nullptr;
  GemmExFn gemm_ex = nullptr;
  std::string name, why;

  Library() {
    const char* env = std::getenv("DIFFLM_CUBLAS");
    if (env && std::strcmp(env, "0") == 0) {
      why = "DIFFLM_CUBLAS=0";
      return;
    }
    const char* names[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so",
                           "/usr/local/cuda/lib64/libcublas.so.13",
                           "/usr/local/cuda/lib64/libcublas.so.12"};
    void* lib = nullptr;
    for (const char* n : names) {
      if ((lib = dlopen(n, RTLD_NOW | RTLD_LOCAL))) {
        name = n;
        break;
      }
    }
    if (!lib) {
      const char* e = dlerror();
      why = std::string("cuBLAS not found (") + (e ? e : "dlopen failed") + ")";
      return;
    }
    create = reinterpret_cast<CreateFn>(dlsym(lib, "cublasCreate_v2"));
    destroy = reinterpret_cast<DestroyFn>(dlsym(lib, "cublasDestroy_v2"));
    set_stream = reinterpret_cast<SetStreamFn>(dlsym(lib, "cublasSetStream_v2"));
    gemm_ex = reinterpret_cast<GemmExFn>(dlsym(lib, "cublasGemmEx"));
    if (!create || !destroy || !set_stream || !gemm_ex) {
      why = name + " lacks cublasCreate_v2, cublasSetStream_v2 or cublasGemmEx";
      create = nullptr;
    }
  }
  bool usable() const { return create != nullptr; }
};

const Library& loaded() {
  static const Library lib;
  return lib;
}

int gemm_ex(void* handle, const uint16_t* A16, const uint16_t* W, float* C, int M, int N, int K,
            bool bf16) {
  const float alpha = 1.f, beta = 0.f;
  const int t16 = bf16 ? 14 : 2;
  // Row-major C[M x N] is column-major C^T[N x M] = W (K x N column-major, transposed) . A^T.
  return loaded().gemm_ex(handle, 1, 0, N, M, K, &alpha, W, t16, K, A16, t16, K, &beta, C, 0, N, 68,
                          -1);
}

// A small GEMM on the handle's stream, BF16 then F16: M, N and K all differ and A and W hold
// small integers without symmetry (exact in both types and in float32 sums), so a swapped
// operand, a transposition or a wrong leading dimension gives a wrong C. Guards against a
// library whose ABI or runtime does not match what this file assumes.
bool self_test(void* handle, void* stream, std::string* why) {
  constexpr int M = 8, N = 24, K = 40;
  std::vector<float> af(M * K), wf(N * K), ref(M * N, 0.f);
  for (int m = 0; m < M; ++m)
    for (int k = 0; k < K; ++k) af[m * K + k] = static_cast<float>((m + 2 * k) % 4);
  for (int r = 0; r < N; ++r)
    for (int k = 0; k < K; ++k) wf[r * K + k] = static_cast<float>((3 * r + k) % 5);
  for (int m = 0; m < M; ++m)
    for (int r = 0; r < N; ++r)
      for (int k = 0; k < K; ++k) ref[m * N + r] += af[m * K + k] * wf[r * K + k];
  const auto st = static_cast<cudaStream_t>(stream);
  void *a = nullptr, *b = nullptr, *c = nullptr;
  bool ok = cudaMalloc(&a, M * K * 2) == cudaSuccess && cudaMalloc(&b, N * K * 2) == cudaSuccess &&
            cudaMalloc(&c, M * N * 4) == cudaSuccess;
  for (const bool bf16 : {true, false}) {
    if (!ok) break;
    std::vector<uint16_t> a16(M * K), w16(N * K);
    for (int i = 0; i < M * K; ++i) a16[i] = bf16 ? f32_to_bf16(af[i]) : f32_to_f16(af[i]);
    for (int i = 0; i < N * K; ++i) w16[i] = bf16 ? f32_to_bf16(wf[i]) : f32_to_f16(wf[i]);
    std::vector<float> out(M * N, -1.f);
    ok =
        cudaMemcpyAsync(a, a16.data(), a16.size() * 2, cudaMemcpyHostToDevice, st) == cudaSuccess &&
        cudaMemcpyAsync(b, w16.data(), w16.size() * 2, cudaMemcpyHostToDevice, st) == cudaSuccess;
    if (!ok) break;
    const int s = gemm_ex(handle, static_cast<uint16_t*>(a), static_cast<uint16_t*>(b),
                          static_cast<float*>(c), M, N, K, bf16);
    if (s != 0) {
      *why = std::string("cuBLAS self-test (") + (bf16 ? "BF16" : "F16") +
             "): cublasGemmEx returned " + std::to_string(s);
      ok = false;
      break;
    }
    ok =
        cudaMemcpyAsync(out.data(), c, out.size() * 4, cudaMemcpyDeviceToHost, st) == cudaSuccess &&
        cudaStreamSynchronize(st) == cudaSuccess;
    for (int i = 0; ok && i < M * N; ++i) ok = out[i] == ref[i];
    if (!ok) *why = std::string("cuBLAS self-test (") + (bf16 ? "BF16" : "F16") + "): wrong result";
  }
  if (!ok && why->empty())
    *why = std::string("cuBLAS self-test: ") + cudaGetErrorString(cudaGetLastError());
  cudaStreamSynchronize(st);
  for (void* p : {a, b, c})
    if (p) cudaFree(p);
  return ok;
}

}  // namespace

std::unique_ptr<Blas> Blas::open(void* stream, std::string* why) {
  const Library& lib = loaded();
  if (!lib.usable()) {
    *why = lib.why;
    return nullptr;
  }
  void* handle = nullptr;
  int s = lib.create(&handle);
  if (s != 0) {
    *why = "cublasCreate_v2 returned " + std::to_string(s);
    return nullptr;
  }
  std::unique_ptr<Blas> blas(new Blas(handle));
  if ((s = lib.set_stream(handle, stream)) != 0) {
    *why = "cublasSetStream_v2 returned " + std::to_string(s);
    return nullptr;
  }
  if (!self_test(handle, stream, why)) return nullptr;
  return blas;
}

Blas::~Blas() {
  loaded().destroy(handle_);
}

bool Blas::gemm16(const uint16_t* A16, const uint16_t* W, float* C, int M, int N, int K,
                  bool bf16) {
  const int s = gemm_ex(handle_, A16, W, C, M, N, K, bf16);
  if (s == 0) return true;
  // CUBLAS_STATUS_ARCH_MISMATCH (8) or NOT_SUPPORTED (15): not this shape or device; the caller
  // runs its own kernels.
  if (s == 8 || s == 15) return false;
  if (s == 3)
    throw EngineError(ErrorCode::OutOfMemory, "cuBLAS could not allocate GPU memory for a GEMM");
  throw EngineError(ErrorCode::Internal, "cublasGemmEx returned status " + std::to_string(s) +
                                             " (M " + std::to_string(M) + ", N " +
                                             std::to_string(N) + ", K " + std::to_string(K) + ")");
}

const std::string& Blas::library() const {
  return loaded().name;
}

}  // namespace cuda
}  // namespace difflm
