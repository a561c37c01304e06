// The SIMT emulator's device side, force-included (-include) when cuda/*.cu are compiled as C++
// for difflm_gpu_check_emu: it runs the CUDA kernels on the CPU, so that CI (which has nvcc but no
// GPU) executes the kernels' index arithmetic, barriers and warp collectives, not only compiles
// them. Each CUDA thread is a fiber; the threads of one block run cooperatively on one OS thread
// and switch only at __syncthreads and warp collectives; blocks run one after another.
//
// What it checks beyond values: a __syncthreads that not every live thread reaches, a warp
// collective whose mask names a lane that has exited or that is waiting elsewhere, a shuffle
// from a lane outside the mask, cp.async data read before its wait (dynamic shared memory and
// device memory start as 0xff bytes, NaN as floats), and (built with -DDIFFLM_SANITIZE=ON)
// out-of-bounds device memory accesses. What it cannot: timing; memory ordering between threads
// (a fiber runs until it blocks, so a missing barrier shows only when the order the emulator
// picks breaks it; the order is shuffled at every barrier to make that likelier); static
// __shared__ variables, which keep the previous block's values instead of being poisoned and do
// not count towards the shared memory limit; __launch_bounds__ (ignored, so a launch above a
// kernel's bound is not refused); kernels that dereference host pointers, or host code that
// dereferences device pointers (all memory is host memory); the tensor-core instructions other
// than the mma.sync and ldmatrix of cuda/gemm_tc.cuh and cuda/mma_tf32.cuh (emulated in
// simt.cpp; no wgmma). A warp
// collective whose mask names an exited lane is reported although PTX only waits for the
// non-exited ones: the project's rule (cuda/common.cuh) is full warps. Floating point follows
// the host: no FMA contraction (the target is built with -ffp-contract=off), correctly rounded
// libm; but mma.sync sums are rounded toward zero, as the tensor cores round them (simt.cpp).
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>  // before __noinline__ is defined: libstdc++ spells __attribute__((__noinline__))
#include <tuple>
#include <type_traits>
#include <utility>

#define DIFFLM_SIMT_EMU 1

// Execution-space qualifiers become plain C++. Shared variables become statics: only one block
// runs at a time, so a static is exactly one block's shared memory.
#undef __global__
#define __global__
#undef __device__
#define __device__
#undef __host__
#define __host__
#undef __forceinline__
#define __forceinline__ inline
#undef __shared__
#define __shared__ static
#undef __launch_bounds__
#define __launch_bounds__(...)
#undef __noinline__
#define __noinline__ __attribute__((noinline))

namespace difflm_emu {

struct ThreadCtx {
  uint3 thread_idx;
  uint3 block_idx;
  dim3 block_dim;
  dim3 grid_dim;
};
// The running fiber's indices (set by the scheduler before every switch into a fiber).
const ThreadCtx& ctx();

void syncthreads();
enum class WarpOp : int { Idx, Xor, Down, Up, MatchAny, Ballot, Sync };
// One warp collective: waits until every lane of `mask` arrives, then returns this lane's result
// (raw bits of the value read, or a lane mask).
uint64_t warp_collective(WarpOp op, unsigned mask, uint64_t bits, int arg, int width);
// Dynamic shared memory of the running launch (poisoned with 0xff bytes before each block).
void* dynamic_smem(size_t align);
// Device-side faults: the launch stops and the runtime reports a sticky launch failure.
[[noreturn]] void trap(const char* why);

// Tensor-core and async-copy instructions of cuda/gemm_tc.cuh (PTX ISA semantics). cp.async
// copies are held per thread until cp_async_wait leaves at most n groups pending, so a tile read
// before its wait sees the poisoned shared memory instead of the data.
void cp_async16(void* smem, const void* gmem, int src_bytes);
void cp_async_commit();
void cp_async_wait(int n);
void ldmatrix_x4(uint32_t r[4], const void* smem);
void mma16816(float d[4], const uint32_t a[4], const uint32_t b[2], bool bf16);
// cuda/mma_tf32.cuh: cvt.rna.tf32.f32 (round to nearest, ties away from zero, to 10 mantissa
// bits) and mma.sync m16n8k8 with tf32 operands, whose low 13 bits the tensor core ignores.
float cvt_rna_tf32(float x);
void mma1688_tf32(float d[4], const uint32_t a[4], const uint32_t b[2]);

template <class T>
uint64_t to_bits(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle type");
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}
template <class T>
T from_bits(uint64_t b) {
  T v;
  std::memcpy(&v, &b, sizeof(T));
  return v;
}

// A kernel launch: DIFFLM_LAUNCH(kernel, grid, block, smem, stream, args...) in cuda/ calls this,
// which runs the whole grid before returning (streams are synchronous).
void run_grid(const char* name, dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
              const void* kernel, void (*body)(void*), void* arg);

template <class... P, class... A>
void launch(const char* name, void (*kernel)(P...), dim3 grid, dim3 block, size_t smem,
            cudaStream_t stream, A&&... args) {
  // Every thread receives its own copy of the parameters, as on the GPU.
  struct Bound {
    void (*kernel)(P...);
    std::tuple<std::decay_t<P>...> params;
  } bound{kernel, std::tuple<std::decay_t<P>...>(static_cast<P>(args)...)};
  run_grid(
      name, grid, block, smem, stream, reinterpret_cast<const void*>(kernel),
      [](void* p) {
        const Bound& b = *static_cast<const Bound*>(p);
        std::tuple<std::decay_t<P>...> mine = b.params;
        std::apply(b.kernel, mine);
      },
      &bound);
}

}  // namespace difflm_emu

// The runtime's C++ conveniences that cuda_runtime.h declares only for nvcc.
template <class... P>
cudaError_t cudaFuncSetAttribute(void (*kernel)(P...), cudaFuncAttribute attr, int value) {
  return ::cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel), attr, value);
}
template <class T>
cudaError_t cudaMemcpyFromSymbolAsync(void* dst, const T& symbol, size_t count, size_t offset = 0,
                                      cudaMemcpyKind kind = cudaMemcpyDeviceToHost,
                                      cudaStream_t stream = nullptr) {
  return ::cudaMemcpyFromSymbolAsync(dst, static_cast<const void*>(&symbol), count, offset, kind,
                                     stream);
}

#define threadIdx (::difflm_emu::ctx().thread_idx)
#define blockIdx (::difflm_emu::ctx().block_idx)
#define blockDim (::difflm_emu::ctx().block_dim)
#define gridDim (::difflm_emu::ctx().grid_dim)

inline void __syncthreads() {
  ::difflm_emu::syncthreads();
}
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  ::difflm_emu::warp_collective(::difflm_emu::WarpOp::Sync, mask, 0, 0, 32);
}
[[noreturn]] inline void __trap() {
  ::difflm_emu::trap("__trap()");
}

template <class T>
T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
  return ::difflm_emu::from_bits<T>(::difflm_emu::warp_collective(
      ::difflm_emu::WarpOp::Idx, mask, ::difflm_emu::to_bits(v), src, width));
}
template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  return ::difflm_emu::from_bits<T>(::difflm_emu::warp_collective(
      ::difflm_emu::WarpOp::Xor, mask, ::difflm_emu::to_bits(v), lane_mask, width));
}
template <class T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  return ::difflm_emu::from_bits<T>(::difflm_emu::warp_collective(
      ::difflm_emu::WarpOp::Down, mask, ::difflm_emu::to_bits(v), static_cast<int>(delta), width));
}
template <class T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  return ::difflm_emu::from_bits<T>(::difflm_emu::warp_collective(
      ::difflm_emu::WarpOp::Up, mask, ::difflm_emu::to_bits(v), static_cast<int>(delta), width));
}
template <class T>
unsigned __match_any_sync(unsigned mask, T v) {
  return static_cast<unsigned>(::difflm_emu::warp_collective(::difflm_emu::WarpOp::MatchAny, mask,
                                                             ::difflm_emu::to_bits(v), 0, 32));
}
inline unsigned __ballot_sync(unsigned mask, int pred) {
  return static_cast<unsigned>(
      ::difflm_emu::warp_collective(::difflm_emu::WarpOp::Ballot, mask, pred != 0, 0, 32));
}
inline int __any_sync(unsigned mask, int pred) {
  return __ballot_sync(mask, pred) != 0;
}
inline int __all_sync(unsigned mask, int pred) {
  return __ballot_sync(mask, pred) == mask;
}

// Atomics: fibers switch only at barriers and collectives, so a plain read-modify-write is atomic.
template <class T, class F>
T atomic_rmw(T* p, F f) {
  const T old = *p;
  *p = f(old);
  return old;
}
template <class T>
T atomicAdd(T* p, T v) {
  return atomic_rmw(p, [v](T o) { return o + v; });
}
template <class T>
T atomicSub(T* p, T v) {
  return atomic_rmw(p, [v](T o) { return o - v; });
}
template <class T>
T atomicMin(T* p, T v) {
  return atomic_rmw(p, [v](T o) { return v < o ? v : o; });
}
template <class T>
T atomicMax(T* p, T v) {
  return atomic_rmw(p, [v](T o) { return v > o ? v : o; });
}
template <class T>
T atomicExch(T* p, T v) {
  return atomic_rmw(p, [v](T) { return v; });
}
template <class T>
T atomicCAS(T* p, T compare, T v) {
  return atomic_rmw(p, [compare, v](T o) { return o == compare ? v : o; });
}
template <class T>
T atomicOr(T* p, T v) {
  return atomic_rmw(p, [v](T o) { return o | v; });
}
template <class T>
T atomicAnd(T* p, T v) {
  return atomic_rmw(p, [v](T o) { return o & v; });
}
inline void __threadfence() {}
inline void __threadfence_block() {}

// Correctly rounded arithmetic: exactly the host's IEEE operations without contraction.
#define DIFFLM_EMU_ROUNDED(T, add_rn, sub_rn, mul_rn, div_rn, fma_rn) \
  inline T add_rn(T a, T b) {                                         \
    return a + b;                                                     \
  }                                                                   \
  inline T sub_rn(T a, T b) {                                         \
    return a - b;                                                     \
  }                                                                   \
  inline T mul_rn(T a, T b) {                                         \
    return a * b;                                                     \
  }                                                                   \
  inline T div_rn(T a, T b) {                                         \
    return a / b;                                                     \
  }                                                                   \
  inline T fma_rn(T a, T b, T c) {                                    \
    return std::fma(a, b, c);                                         \
  }
DIFFLM_EMU_ROUNDED(float, __fadd_rn, __fsub_rn, __fmul_rn, __fdiv_rn, __fmaf_rn)
DIFFLM_EMU_ROUNDED(double, __dadd_rn, __dsub_rn, __dmul_rn, __ddiv_rn, __fma_rn)
#undef DIFFLM_EMU_ROUNDED
inline float rsqrtf(float x) {
  return 1.0f / std::sqrt(x);
}
inline double rsqrt(double x) {
  return 1.0 / std::sqrt(x);
}
inline float __expf(float x) {
  return std::exp(x);
}
inline float __logf(float x) {
  return std::log(x);
}

inline unsigned __float_as_uint(float f) {
  return ::difflm_emu::from_bits<unsigned>(::difflm_emu::to_bits(f));
}
inline float __uint_as_float(unsigned u) {
  return ::difflm_emu::from_bits<float>(::difflm_emu::to_bits(u));
}
inline int __float_as_int(float f) {
  return ::difflm_emu::from_bits<int>(::difflm_emu::to_bits(f));
}
inline float __int_as_float(int u) {
  return ::difflm_emu::from_bits<float>(::difflm_emu::to_bits(u));
}
inline long long __double_as_longlong(double d) {
  return ::difflm_emu::from_bits<long long>(::difflm_emu::to_bits(d));
}
inline double __longlong_as_double(long long u) {
  return ::difflm_emu::from_bits<double>(::difflm_emu::to_bits(u));
}
inline int __popc(unsigned x) {
  return __builtin_popcount(x);
}
inline int __popcll(unsigned long long x) {
  return __builtin_popcountll(x);
}
inline int __ffs(int x) {
  return __builtin_ffs(x);
}
inline int __ffsll(long long x) {
  return __builtin_ffsll(x);
}
inline int __clz(int x) {
  return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x));
}
inline int __clzll(long long x) {
  return x == 0 ? 64 : __builtin_clzll(static_cast<unsigned long long>(x));
}
template <class T>
T __ldg(const T* p) {
  return *p;
}
inline size_t __cvta_generic_to_shared(const void* p) {
  return reinterpret_cast<size_t>(p);
}

// CUDA's device min/max overloads (host C++ has none in the global namespace).
#define DIFFLM_EMU_MIN_MAX(T) \
  inline T min(T a, T b) {    \
    return b < a ? b : a;     \
  }                           \
  inline T max(T a, T b) {    \
    return a < b ? b : a;     \
  }
DIFFLM_EMU_MIN_MAX(int)
DIFFLM_EMU_MIN_MAX(unsigned)
DIFFLM_EMU_MIN_MAX(long)
DIFFLM_EMU_MIN_MAX(unsigned long)
DIFFLM_EMU_MIN_MAX(long long)
#undef DIFFLM_EMU_MIN_MAX
inline float min(float a, float b) {
  return std::fmin(a, b);
}
inline float max(float a, float b) {
  return std::fmax(a, b);
}
inline double min(double a, double b) {
  return std::fmin(a, b);
}
inline double max(double a, double b) {
  return std::fmax(a, b);
}
using std::isfinite;
using std::isinf;
using std::isnan;
