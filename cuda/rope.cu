// Rotate-half rotary embedding, in place on x [rows][heads][head_dim]; row r is at position
// pos0 + r; tables cos/sin [max_pos][head_dim / 2] (filled by rope_fill on the host, uploaded).
// CPU twin: rope_apply() in native/engine/cpu/ops.cpp. The products and differences use the
// _rn intrinsics so nvcc cannot fuse them into FMAs: the result is then bit-identical to the
// CPU's (which compiles without contraction).
#include <algorithm>

#include "common.cuh"

namespace difflm {
namespace cuda {

namespace {

constexpr int kRopeThreads = 256;

// One thread per rotated pair (r, h, j < half): reads v[j] and v[j + half], writes both.
__global__ void __launch_bounds__(kRopeThreads)
    rope_kernel1(float* __restrict__ x, int64_t rows, int64_t heads, int64_t half, int64_t pos0,
                 const float* __restrict__ cos_t, const float* __restrict__ sin_t) {
  const int64_t n = rows * heads * half;
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < n;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t j = t % half;
    const int64_t rh = t / half;  // r * heads + h
    const int64_t r = rh / heads;
    const float c = cos_t[(pos0 + r) * half + j], s = sin_t[(pos0 + r) * half + j];
    float* v = x + rh * 2 * half;
    const float a = v[j], b = v[j + half];
    v[j] = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
    v[j + half] = __fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s));
  }
}

}  // namespace

void rope(float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t pos0, const float* cos,
          const float* sin, Stream s) {
  CUDA_REQUIRE(rows >= 0 && heads > 0 && head_dim > 0 && head_dim % 2 == 0 && pos0 >= 0,
               "rope: bad shape");
  const int64_t half = head_dim / 2;
  const int64_t n = rows * heads * half;
  if (n == 0) return;
  // Grid-stride loop; 64k blocks of 256 cover every realistic size in one sweep.
  const int64_t blocks = std::min<int64_t>(ceil_div<int64_t>(n, kRopeThreads), 65536);
  DIFFLM_LAUNCH(rope_kernel1, static_cast<unsigned>(blocks), kRopeThreads, 0, to_stream(s), x, rows,
                heads, half, pos0, cos, sin);
  CUDA_CHECK_LAUNCH("rope_kernel1");
}

}  // namespace cuda
}  // namespace difflm
