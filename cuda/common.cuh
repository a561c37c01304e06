// Shared helpers of the CUDA kernels (llm.c's dev/cuda/common.h in spirit): the check macros that
// turn a CUDA failure into difflm::EngineError(Internal) naming the call and its place, ceil_div,
// warp and block reductions for float and double, 16-bit conversions that round exactly as the
// host's dtype.h does, and a cached compute-capability query. Header-only; include from .cu files.
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "dtype.h"
#include "errors.h"
#include "kernels.h"

namespace difflm {
namespace cuda {

// ---------------------------------------------------------------------------------------------
// Error checks
// ---------------------------------------------------------------------------------------------

// Throws EngineError(Internal, "<call> failed at file:line: <CUDA message>"), after reading the
// thread's last error: a failed call records it there too, and left there (when it is not sticky)
// the next launch check would blame an innocent kernel.
[[noreturn]] inline void cuda_fail(cudaError_t err, const char* call, const char* file, int line) {
  cudaGetLastError();
  throw EngineError(ErrorCode::Internal, std::string(call) + " failed at " + file + ":" +
                                             std::to_string(line) + ": " + cudaGetErrorString(err));
}

// Every CUDA runtime call goes through this: CUDA_CHECK(cudaMemsetAsync(p, 0, n, stream));
#define CUDA_CHECK(call)                                                      \
  do {                                                                        \
    cudaError_t difflm_cuda_err_ = (call);                                    \
    if (difflm_cuda_err_ != cudaSuccess)                                      \
      ::difflm::cuda::cuda_fail(difflm_cuda_err_, #call, __FILE__, __LINE__); \
  } while (0)

// After every kernel launch: catches bad launch configurations (too much shared memory, grid too
// large) at once. It does not synchronize, so faults inside the kernel surface at the next
// checked call that waits on the stream. `name` is the kernel's name, a string literal.
#define CUDA_CHECK_LAUNCH(name)                                                           \
  do {                                                                                    \
    cudaError_t difflm_cuda_err_ = cudaGetLastError();                                    \
    if (difflm_cuda_err_ != cudaSuccess)                                                  \
      ::difflm::cuda::cuda_fail(difflm_cuda_err_, "launch of " name, __FILE__, __LINE__); \
  } while (0)

// Argument checks of the host entry points (a bug in the caller, hence Internal as well).
#define CUDA_REQUIRE(cond, msg)                                                    \
  do {                                                                             \
    if (!(cond))                                                                   \
      throw ::difflm::EngineError(::difflm::ErrorCode::Internal,                   \
                                  std::string("cuda: ") + (msg) + " (" #cond ")"); \
  } while (0)

// Kernel launches are written DIFFLM_LAUNCH(kernel, grid, block, smem, stream, args...) (a kernel
// whose template arguments hold a comma goes in parentheses) and dynamic shared memory
// DIFFLM_DYNAMIC_SMEM(type, name, alignment): with nvcc these are the usual <<<...>>> and
// `extern __shared__` array; test/cuda-emu (DIFFLM_SIMT_EMU) runs the same kernels on the CPU.
#if defined(DIFFLM_SIMT_EMU)
#define DIFFLM_LAUNCH(kernel, grid, block, smem, stream, ...) \
  ::difflm_emu::launch(#kernel, kernel, grid, block, smem, stream __VA_OPT__(, ) __VA_ARGS__)
#define DIFFLM_DYNAMIC_SMEM(T, name, align) \
  T* name = static_cast<T*>(::difflm_emu::dynamic_smem(align))
#else
#define DIFFLM_LAUNCH(kernel, grid, block, smem, stream, ...) \
  kernel<<<grid, block, smem, stream>>>(__VA_ARGS__)
#define DIFFLM_DYNAMIC_SMEM(T, name, align) \
  extern __shared__ __align__(align)        \
  T name[]
#endif

inline cudaStream_t to_stream(Stream s) {
  return static_cast<cudaStream_t>(s);
}

// ---------------------------------------------------------------------------------------------
// Small integer helpers
// ---------------------------------------------------------------------------------------------

template <class T>
__host__ __device__ constexpr T ceil_div(T a, T b) {
  return (a + b - 1) / b;
}

// Compute capability of the current device as major*10+minor (e.g. 90), cached per device so a
// hot path pays one cudaGetDevice. Used to pick kernels (bf16 mma needs >= 80).
inline int device_cc() {
  static std::atomic<int> cache[64] = {};
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  if (dev < 0 || dev >= 64) dev = 63;
  int cc = cache[dev].load(std::memory_order_relaxed);
  if (cc == 0) {
    int major = 0, minor = 0;
    CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
    cc = major * 10 + minor;
    cache[dev].store(cc, std::memory_order_relaxed);
  }
  return cc;
}

// Lets `kernel` use `bytes` of dynamic shared memory on the current device (above the 48 KiB
// default), asking the runtime once per device: `done` holds a bit per device and belongs to
// the caller, one static per kernel instantiation.
template <class Kernel>
void allow_dynamic_smem(Kernel kernel, int bytes, std::atomic<uint64_t>& done) {
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  const uint64_t bit = 1ull << (dev & 63);
  if (done.load(std::memory_order_relaxed) & bit) return;
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  done.fetch_or(bit, std::memory_order_relaxed);
}

// ---------------------------------------------------------------------------------------------
// Reductions. Warp versions need all 32 lanes active (full mask). Block versions need the block's
// thread count to be a multiple of 32 (at most 1024), every thread of the block to call them
// (they contain __syncthreads), and return the result to every thread. They end with a
// __syncthreads so that two reductions in a row cannot race on the shared scratch.
// ---------------------------------------------------------------------------------------------

template <class T>
__device__ __forceinline__ T warp_reduce_sum(T v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

template <class T>
__device__ __forceinline__ T warp_reduce_max(T v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    T o = __shfl_xor_sync(0xffffffffu, v, off);
    v = o > v ? o : v;  // fmax semantics would hide NaN; keep it plain, NaN checks live in tests
  }
  return v;
}

namespace detail {
template <class T, bool kMax>
__device__ __forceinline__ T block_reduce(T v, T identity) {
  __shared__ T partial[32];
  const int tid = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const int nthreads = blockDim.x * blockDim.y * blockDim.z;
  const int lane = tid & 31, warp = tid >> 5, nwarps = nthreads >> 5;
  v = kMax ? warp_reduce_max(v) : warp_reduce_sum(v);
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  T w = lane < nwarps ? partial[lane] : identity;
  w = kMax ? warp_reduce_max(w) : warp_reduce_sum(w);
  __syncthreads();  // partial[] may be reused by the next reduction
  return w;
}
}  // namespace detail

__device__ __forceinline__ float block_reduce_sum(float v) {
  return detail::block_reduce<float, false>(v, 0.f);
}
__device__ __forceinline__ double block_reduce_sum(double v) {
  return detail::block_reduce<double, false>(v, 0.0);
}
__device__ __forceinline__ unsigned long long block_reduce_sum(unsigned long long v) {
  return detail::block_reduce<unsigned long long, false>(v, 0ull);
}
__device__ __forceinline__ float block_reduce_max(float v) {
  return detail::block_reduce<float, true>(v, -INFINITY);
}
__device__ __forceinline__ double block_reduce_max(double v) {
  return detail::block_reduce<double, true>(v, -(double)INFINITY);
}

// ---------------------------------------------------------------------------------------------
// 16-bit conversions, bit-exact twins of dtype.h (f32_to_bf16, f32_to_f16, bf16_to_f32,
// f16_to_f32) so GPU and CPU see the same rounded values.
// ---------------------------------------------------------------------------------------------

__device__ __forceinline__ float bf16_bits_to_f32(uint16_t h) {
  return __uint_as_float(static_cast<uint32_t>(h) << 16);
}

// Round to nearest even; NaN stays NaN (quieted), as difflm::f32_to_bf16.
__device__ __forceinline__ uint16_t f32_to_bf16_bits(float f) {
  uint32_t bits = __float_as_uint(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

// IEEE binary16 to float: exact for all inputs, the hardware conversion (cvt.f32.f16).
__device__ __forceinline__ float f16_bits_to_f32(uint16_t h) {
#if defined(DIFFLM_SIMT_EMU)
  return f16_to_f32(h);
#else
  float f;
  asm("{ .reg .b16 t; mov.b16 t, %1; cvt.f32.f16 %0, t; }" : "=f"(f) : "h"(h));
  return f;
#endif
}

// Round to nearest even (cvt.rn.f16.f32), overflow to inf, subnormals kept: the same values as
// difflm::f32_to_f16 for every input (NaN becomes sign|0x7e00 as there).
__device__ __forceinline__ uint16_t f32_to_f16_bits(float f) {
  const uint32_t bits = __float_as_uint(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u)
    return static_cast<uint16_t>(((bits >> 16) & 0x8000u) | 0x7e00u);
#if defined(DIFFLM_SIMT_EMU)
  return f32_to_f16(f);
#else
  uint16_t h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
#endif
}

// Element i of a weight row of type t as float32 (device twin of difflm::load_as_f32).
__device__ __forceinline__ float load_as_f32_dev(const void* p, DType t, size_t i) {
  switch (t) {
    case DType::F32: return static_cast<const float*>(p)[i];
    case DType::F16: return f16_bits_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::BF16: return bf16_bits_to_f32(static_cast<const uint16_t*>(p)[i]);
  }
  return 0.f;
}

// ---------------------------------------------------------------------------------------------
// 128-bit loads and stores (llm.c's Packed128): use only on 16-byte aligned addresses.
// ---------------------------------------------------------------------------------------------

template <class T>
struct alignas(16) Packed128 {
  static constexpr int size = 16 / sizeof(T);
  T v[size];
  __device__ T& operator[](int i) { return v[i]; }
  __device__ const T& operator[](int i) const { return v[i]; }
};

template <class T>
__device__ __forceinline__ Packed128<T> load128(const T* p) {
  return *reinterpret_cast<const Packed128<T>*>(p);
}
template <class T>
__device__ __forceinline__ void store128(T* p, const Packed128<T>& x) {
  *reinterpret_cast<Packed128<T>*>(p) = x;
}

__host__ __device__ inline bool is_aligned(const void* p, size_t bytes) {
  return (reinterpret_cast<uintptr_t>(p) % bytes) == 0;
}

// ---------------------------------------------------------------------------------------------
// Scratch memory
// ---------------------------------------------------------------------------------------------

// A stream-ordered device allocation freed on every exit path (also when a check throws).
struct AsyncScratch {
  void* p = nullptr;
  cudaStream_t s;
  AsyncScratch(size_t bytes, cudaStream_t st) : s(st) {
    const cudaError_t err = cudaMallocAsync(&p, bytes, s);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      throw EngineError(ErrorCode::OutOfMemory,
                        "out of GPU memory allocating " + std::to_string(bytes) + " scratch bytes");
    }
    CUDA_CHECK(err);
  }
  ~AsyncScratch() {
    if (p) cudaFreeAsync(p, s);  // nothing to do about a failure here
  }
  AsyncScratch(const AsyncScratch&) = delete;
  AsyncScratch& operator=(const AsyncScratch&) = delete;
};

}  // namespace cuda
}  // namespace difflm
