// Elementwise kernels: SwiGLU, residual add, bias add, and the embedding gather.
// CPU twins in native/engine/cpu/ops.cpp: swiglu(), add_inplace(), add_bias_rows(),
// embedding_gather(). All four are bit-identical to the CPU (swiglu through the shared silu_mul,
// silu.h; NaN results may differ in payload bits).
#include <algorithm>

#include "common.cuh"
#include "silu.h"

namespace difflm {
namespace cuda {

namespace {

constexpr int kEwThreads = 256;

// Enough blocks of a grid-stride loop to fill any current GPU several times over.
unsigned ew_blocks(int64_t n) {
  return static_cast<unsigned>(std::min<int64_t>(ceil_div<int64_t>(n, kEwThreads), 8192));
}

// out = silu(g) * u (silu.h). out may alias gate: each element is read before it is written by
// the same thread.
__global__ void __launch_bounds__(kEwThreads)
    swiglu_kernel1(const float* gate, const float* __restrict__ up, float* out, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = silu_mul(gate[i], up[i]);
  }
}

// x += y with 128-bit accesses when both are 16-byte aligned, else one float at a time.
__global__ void __launch_bounds__(kEwThreads)
    add_kernel1(float* __restrict__ x, const float* __restrict__ y, int64_t n, bool vec) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t t0 = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  int64_t done = 0;
  if (vec) {
    const int64_t n4 = n / 4;
    for (int64_t i = t0; i < n4; i += stride) {
      Packed128<float> a = load128(x + 4 * i);
      const Packed128<float> b = load128(y + 4 * i);
#pragma unroll
      for (int k = 0; k < 4; ++k) a[k] += b[k];
      store128(x + 4 * i, a);
    }
    done = n4 * 4;
  }
  for (int64_t i = done + t0; i < n; i += stride) x[i] += y[i];
}

// x[i] += bias[i % dim] over the rows * dim elements of x (grid-stride).
template <DType DT>
__global__ void __launch_bounds__(kEwThreads)
    add_bias_kernel1(float* __restrict__ x, int64_t n, int64_t dim, const void* __restrict__ bias) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    x[i] += load_as_f32_dev(bias, DT, static_cast<size_t>(i % dim));
}

// One block per gathered row (grid-stride over rows), threads across the row.
template <DType DT>
__global__ void __launch_bounds__(kEwThreads)
    embedding_kernel1(const void* __restrict__ table, int64_t dim, const int32_t* __restrict__ ids,
                      int64_t n, float* __restrict__ out) {
  for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
    const int64_t row = ids[i];
    const size_t base = static_cast<size_t>(row) * static_cast<size_t>(dim);
    for (int64_t d = threadIdx.x; d < dim; d += blockDim.x)
      out[i * dim + d] = load_as_f32_dev(table, DT, base + static_cast<size_t>(d));
  }
}

}  // namespace

void swiglu(const float* gate, const float* up, float* out, int64_t n, Stream s) {
  CUDA_REQUIRE(n >= 0, "swiglu: negative size");
  if (n == 0) return;
  DIFFLM_LAUNCH(swiglu_kernel1, ew_blocks(n), kEwThreads, 0, to_stream(s), gate, up, out, n);
  CUDA_CHECK_LAUNCH("swiglu_kernel1");
}

void add(float* x, const float* y, int64_t n, Stream s) {
  CUDA_REQUIRE(n >= 0, "add: negative size");
  if (n == 0) return;
  const bool vec = is_aligned(x, 16) && is_aligned(y, 16);
  DIFFLM_LAUNCH(add_kernel1, ew_blocks(vec ? ceil_div<int64_t>(n, 4) : n), kEwThreads, 0,
                to_stream(s), x, y, n, vec);
  CUDA_CHECK_LAUNCH("add_kernel1");
}

void add_bias(float* x, int64_t rows, int64_t dim, const void* bias, DType bt, Stream s) {
  CUDA_REQUIRE(rows >= 0 && dim > 0, "add_bias: bad shape");
  const int64_t n = rows * dim;
  if (n == 0) return;
  const cudaStream_t st = to_stream(s);
  switch (bt) {
    case DType::F32:
      DIFFLM_LAUNCH(add_bias_kernel1<DType::F32>, ew_blocks(n), kEwThreads, 0, st, x, n, dim, bias);
      break;
    case DType::F16:
      DIFFLM_LAUNCH(add_bias_kernel1<DType::F16>, ew_blocks(n), kEwThreads, 0, st, x, n, dim, bias);
      break;
    case DType::BF16:
      DIFFLM_LAUNCH(add_bias_kernel1<DType::BF16>, ew_blocks(n), kEwThreads, 0, st, x, n, dim,
                    bias);
      break;
  }
  CUDA_CHECK_LAUNCH("add_bias_kernel1");
}

void embedding(const void* table, DType dt, int64_t dim, const int32_t* ids, int64_t n, float* out,
               Stream s) {
  CUDA_REQUIRE(n >= 0 && dim > 0, "embedding: bad shape");
  if (n == 0) return;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(n, 65535));
  const cudaStream_t st = to_stream(s);
  switch (dt) {
    case DType::F32:
      DIFFLM_LAUNCH(embedding_kernel1<DType::F32>, blocks, kEwThreads, 0, st, table, dim, ids, n,
                    out);
      break;
    case DType::F16:
      DIFFLM_LAUNCH(embedding_kernel1<DType::F16>, blocks, kEwThreads, 0, st, table, dim, ids, n,
                    out);
      break;
    case DType::BF16:
      DIFFLM_LAUNCH(embedding_kernel1<DType::BF16>, blocks, kEwThreads, 0, st, table, dim, ids, n,
                    out);
      break;
  }
  CUDA_CHECK_LAUNCH("embedding_kernel1");
}

}  // namespace cuda
}  // namespace difflm
